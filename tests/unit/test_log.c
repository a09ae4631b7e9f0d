/*
 * Unit tests for log.c off the journal: the stderr line formats, level
 * filtering, errno across a call, and the rate limit on identical errors
 * and warnings (t_journal.sh covers the journald side).  stderr is a
 * temporary file that each test reads back.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "qt.h"

static FILE	*err_file;
static int	 err_saved = -1;	/* the real stderr */
static char	 out[1 << 16];

static void
redirect(void)
{
	fflush(stderr);
	assert_int_not_equal(dup2(fileno(err_file), STDERR_FILENO), -1);
}

/* A fresh stderr, and the rate limiter's state forgotten. */
static int
setup(void **state)
{
	(void)state;
	log_flush_repeats();
	fflush(stderr);
	if (!(err_file = tmpfile()))
		return -1;
	if (err_saved == -1 && (err_saved = dup(STDERR_FILENO)) == -1)
		return -1;
	redirect();
	unsetenv("JOURNAL_STREAM");
	log_init("qtt", LOG_L_INFO);
	log_set_plain(0);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	(void)dup2(err_saved, STDERR_FILENO);
	fclose(err_file);
	return 0;
}

/* What went to stderr since setup; the real stderr is back, so that a
 * failing assertion shows.  redirect() to capture more. */
static const char *
captured(void)
{
	size_t n;

	fflush(stderr);
	(void)dup2(err_saved, STDERR_FILENO);
	rewind(err_file);
	n = fread(out, 1, sizeof(out) - 1, err_file);
	out[n] = '\0';
	return out;
}

static int
count_lines(const char *text, const char *needle)
{
	const char *p = text;
	int n = 0;

	while ((p = strstr(p, needle))) {
		n++;
		p += strlen(needle);
	}
	return n;
}

static void
test_format(void **state)
{
	char want[128];

	(void)state;
	log_warn("disk %s is \"%s\"", "a", "full");
	snprintf(want, sizeof(want), "qtt[%d]: warning: disk a is \"full\"\n",
	    (int)getpid());
	assert_string_equal(captured(), want);
}

static void
test_plain(void **state)
{
	(void)state;
	log_set_plain(1);
	log_err("qt.conf:3: unknown keyword \"x\"");
	assert_string_equal(captured(), "qt.conf:3: unknown keyword \"x\"\n");
}

/* A JOURNAL_STREAM that is not our stderr is inherited, not ours. */
static void
test_foreign_stream(void **state)
{
	(void)state;
	setenv("JOURNAL_STREAM", "1:1", 1);
	log_init("qtt", LOG_L_INFO);
	log_notice("hello");
	assert_non_null(strstr(captured(), "]: notice: hello\n"));
	assert_null(strchr(out, '<'));
}

static void
test_levels(void **state)
{
	(void)state;
	log_debug("hidden");
	log_info("shown");
	log_set_level(LOG_L_DEBUG);
	log_debug("now shown");
	log_set_level(LOG_L_ERR);
	log_warn("hidden too");
	captured();
	assert_null(strstr(out, "hidden"));
	assert_non_null(strstr(out, "info: shown\n"));
	assert_non_null(strstr(out, "debug: now shown\n"));
}

static void
test_errno(void **state)
{
	(void)state;
	errno = ENOENT;
	log_err("open: %m");
	assert_int_equal(errno, ENOENT);
	log_flow(LOG_L_INFO, 7, "192.0.2.9:4000", "qt2", "closed", "done",
	    "flow %d: %m", 7);
	assert_int_equal(errno, ENOENT);
	captured();
	assert_non_null(strstr(out, "error: open: No such file or directory\n"));
	assert_non_null(strstr(out, "info: flow 7: No such file or directory\n"));
}

static void
test_rate_limit(void **state)
{
	int i;

	(void)state;
	for (i = 0; i < 25; i++) {
		log_warn("peer 192.0.2.2 unreachable");
		log_info("not limited");
	}
	log_err("peer 192.0.2.2 unreachable");	/* other level, other slot */
	log_warn("something else");
	captured();
	assert_int_equal(count_lines(out, "warning: peer 192.0.2.2 "
	    "unreachable\n"), 10);
	assert_int_equal(count_lines(out, "error: peer 192.0.2.2 "
	    "unreachable\n"), 1);
	assert_int_equal(count_lines(out, "info: not limited\n"), 25);
	assert_int_equal(count_lines(out, "something else\n"), 1);
	assert_null(strstr(out, "repeated"));

	redirect();
	log_flush_repeats();
	captured();
	assert_int_equal(count_lines(out, "warning: peer 192.0.2.2 unreachable "
	    "(repeated 15 times)\n"), 1);
	assert_int_equal(count_lines(out, "repeated"), 1);

	/* A new window. */
	redirect();
	log_warn("peer 192.0.2.2 unreachable");
	captured();
	assert_int_equal(count_lines(out, "warning: peer 192.0.2.2 "
	    "unreachable\n"), 11);
}

/*
 * More distinct messages than slots: the oldest window ends early, so
 * every message is either logged or counted in a summary.
 */
static void
test_rate_limit_slots(void **state)
{
	const char *p;
	int i, k, logged = 0, counted = 0;

	(void)state;
	for (k = 0; k < 40; k++)
		for (i = 0; i < 12; i++)
			log_warn("message %d", k);
	log_flush_repeats();
	captured();
	for (p = out; *p; p = strchr(p, '\n') + 1) {
		const char *r = strstr(p, "(repeated ");

		if (r && r < strchr(p, '\n'))
			counted += atoi(r + strlen("(repeated "));
		else
			logged++;
	}
	assert_int_equal(logged, 40 * 10);
	assert_int_equal(counted, 40 * 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_format, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_foreign_stream, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_levels, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errno, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rate_limit, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_rate_limit_slots, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
