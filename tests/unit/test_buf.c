#include <criterion/criterion.h>
#include <string.h>

#include "buf.h"

TestSuite(buf);

Test(buf, printf_appends_and_grows)
{
	struct buf b;
	char big[300];
	int i;

	buf_init(&b, 0);
	cr_assert_eq(buf_printf(&b, "%s", ""), 0);
	cr_assert_str_eq(buf_cstr(&b), "");
	for (i = 0; i < 100; i++)
		cr_assert_eq(buf_printf(&b, "%d,", i), 0);
	cr_assert_eq(b.len, 10 * 2 + 90 * 3);
	cr_assert_eq(strncmp(b.data, "0,1,2,", 6), 0);
	cr_assert_eq(strcmp(b.data + b.len - 3, "99,"), 0);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	buf_reset(&b);
	cr_assert_eq(buf_printf(&b, "<%s>", big), 0);
	cr_assert_eq(b.len, 301);
	cr_assert_eq(b.data[0], '<');
	cr_assert_eq(b.data[300], '>');
	cr_assert_eq(b.data[301], '\0');
	buf_cleanup(&b);
}

Test(buf, printf_exact_fit_of_the_spare_room)
{
	struct buf b;
	size_t room;

	buf_init(&b, 0);
	cr_assert_eq(buf_puts(&b, "ab"), 0);
	room = b.cap - b.len;
	/* room - 1 characters fit with their NUL; room do not */
	cr_assert_eq(buf_printf(&b, "%*s", (int)(room - 1), "y"), 0);
	cr_assert_eq(b.len, 2 + room - 1);
	cr_assert_eq(buf_printf(&b, "%s", "z"), 0);
	cr_assert_eq(b.data[b.len - 1], 'z');
	cr_assert_eq(b.data[b.len], '\0');
	cr_assert_eq(strncmp(b.data, "ab", 2), 0);
	buf_cleanup(&b);
}

Test(buf, cap_refuses_and_frees)
{
	struct buf b;

	buf_init(&b, 8);
	cr_assert_eq(buf_printf(&b, "%s", "12345678"), 0);
	cr_assert_eq(buf_printf(&b, "%d", 9), -1);
	cr_assert_null(buf_cstr(&b));
	cr_assert_eq(buf_puts(&b, "x"), -1, "a failed buffer stays failed");
	buf_cleanup(&b);

	/* over the cap inside already allocated room */
	buf_init(&b, 4);
	cr_assert_eq(buf_puts(&b, "ab"), 0);
	cr_assert_gt(b.cap, 8);
	cr_assert_eq(buf_printf(&b, "%s", "cde"), -1);
	cr_assert_null(buf_cstr(&b));
	buf_cleanup(&b);
}
