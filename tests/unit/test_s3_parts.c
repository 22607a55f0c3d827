#include <criterion/criterion.h>
#include <stdint.h>

#include "s3.h"

TestSuite(s3_parts);

#define MIB (1024ull * 1024ull)
#define GIB (1024ull * MIB)

/* Up to 10,000 parts of the configured size, the configured size. */
Test(s3_parts, configured_size_while_within_10000_parts)
{
	cr_assert_eq(s3_part_size(8 * MIB, 0), 8 * MIB);
	cr_assert_eq(s3_part_size(8 * MIB, 1 * GIB), 8 * MIB);
	cr_assert_eq(s3_part_size(8 * MIB, 10000 * 8 * MIB), 8 * MIB);
	cr_assert_eq(s3_part_size(64 * MIB, 100 * GIB), 64 * MIB);
}

/* Past them, the least whole MiB that keeps within 10,000 parts: the
 * upload no longer fails for a file of more than 78 GiB. */
Test(s3_parts, grows_with_the_file)
{
	uint64_t len, size;

	cr_assert_eq(s3_part_size(8 * MIB, 10000 * 8 * MIB + 1), 9 * MIB);
	len = 100 * GIB;
	size = s3_part_size(8 * MIB, len);
	cr_assert_eq(size % MIB, 0);
	cr_assert_leq((len + size - 1) / size, 10000);
	cr_assert_gt((len + size - MIB - 1) / (size - MIB), 10000,
	             "one MiB less would need more parts");
	len = 5000 * GIB; /* S3's largest object */
	size = s3_part_size(5 * MIB, len);
	cr_assert_leq((len + size - 1) / size, 10000);
	cr_assert_leq(size, 5 * GIB);
}
