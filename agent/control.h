/*
 * control: the control socket. An HTTP/1.1 server (libmicrohttpd) on a
 * Unix socket, driven from the daemon's event loop: MHD's epoll fd is one
 * more fd of the loop and its timeout one more timer, so every handler runs
 * on the loop's thread and reads the engine and the state database without
 * locks. Requests that wait on the network (a DynamoDB Scan, GetItem, a
 * delete) suspend their connection and resume it from their callback; the
 * loop and other clients go on meanwhile. The endpoints are in DESIGN.md
 * section 5 and in control_api.h; the files that answer them are listed in
 * control_impl.h.
 */
#ifndef IMGSYNC_CONTROL_H
#define IMGSYNC_CONTROL_H

#include "aws.h"
#include "config.h"
#include "dynamo.h"
#include "loop.h"
#include "state.h"
#include "sync.h"

struct control;

/* Everything is borrowed and must outlive the server, except that the AWS
 * clients may be freed after control_free (their callbacks then find
 * requests the server left behind, and free them). */
struct control_deps {
	struct loop *loop;
	struct sync *sync;
	struct state *state;
	struct dynamo *ddb;
	struct s3 *s3;
	const struct config *cfg; /* until control_reconfigure gives another */
	const struct aws_client *s3c;
	const struct aws_client *ddbc;
};

/*
 * Creates the socket at cfg->control.socket (mode 0660, group
 * cfg->control.group when it exists; a missing directory is created 0750)
 * and starts serving. A socket file left by a dead daemon is replaced; one
 * a live daemon answers on is an error, as is any other file there.
 */
struct control *control_new(const struct config *cfg,
                            const struct control_deps *deps, struct err *e);
/* Answers waiting requests with 503, closes every connection and removes
 * the socket. NULL is a no-op. */
void control_free(struct control *c);
/* Takes what can change on reload: the trash, the body cap, the labels of
 * /status. cfg is copied from. */
void control_reconfigure(struct control *c, const struct config *cfg);

#endif
