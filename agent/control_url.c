/*
 * control_url: POST /url, a link to one synced file that anyone holding it
 * can open until it expires: a presigned S3 GET (s3_presign_get), signed
 * here with the daemon's credentials, nothing sent. Only a file the state
 * database holds as synced gets one, under the key it was uploaded with.
 * A link cannot outlive the credentials that signed it (temporary ones
 * from a role, SSO, a container): it is cut to their expiry, and the
 * answer says so.
 */
#include "control_impl.h"

#include <stdlib.h>
#include <string.h>

#include "item.h"
#include "log.h"
#include "s3.h"
#include "text.h"

enum MHD_Result
control_url_answer(struct control_conn *k)
{
	struct control *c = k->c;
	struct state_file f;
	struct aws_presigned p;
	struct timespec ts;
	char at[256], who[128];
	struct err e;
	json_t *doc;
	char *url;
	int found;

	err_clear(&e);
	memset(&f, 0, sizeof(f));
	found = state_file_get(c->d.state, k->req.path, strlen(k->req.path), &f,
	                       &e);
	if (found == -1)
		return control_conn_error(k, 500, e.message);
	if (found == 0 || f.failed || f.key == NULL ||
	    strcmp(f.key, k->req.name) != 0) {
		state_file_cleanup(&f);
		return control_conn_error(k, 404,
		                          "No synced file by that name");
	}
	url = s3_presign_get(c->d.s3, f.key, k->req.expires, &p, &e);
	state_file_cleanup(&f);
	if (url == NULL)
		return control_conn_error(k, e.kind == ERR_CREDS ? 503 : 500,
		                          e.message);
	/* a link gives the file away: who asked for one is kept */
	log_info("%s: link to %s for %d s",
	         control_conn_who(k, who, sizeof(who)),
	         log_path(k->req.name, at, sizeof(at)), p.expires_secs);
	ts.tv_sec = p.expires_at;
	ts.tv_nsec = 0;
	text_iso_time(&ts, 0, at, sizeof(at));
	doc = json_pack("{s:s,s:s,s:i,s:s,s:b}", ITEM_FILENAME, k->req.name,
	                "url", url, "expires_in", p.expires_secs, "expires_at",
	                at, "capped", p.capped);
	free(url);
	if (doc != NULL && p.capped)
		json_object_set_new(
		    doc, "note",
		    json_string("cut to the expiry of the credentials that "
		                "signed it"));
	return control_conn_json(k, 200, doc);
}
