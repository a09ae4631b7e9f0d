/*
 * libFuzzer target: the config parser, config_load_errors(), on the
 * input as a file.  The file is a memfd, rewritten in place for each
 * input and opened by its /proc path: no disk, no directory to clean.
 *
 * key-file and accept-key-file lines would make the parser open any path
 * the fuzzer spells (a tty, a FIFO: a hang).  They are rewritten to name
 * one of three files the harness made: a malformed key if the line says
 * "bad", no file if it says "missing", a good key otherwise.  The key
 * file's text is fuzzed directly instead, through auth_key_parse().
 *
 * Properties: one error line per error counted; an accepted config is
 * consistent (self is a node, ids unique and in range, group members and
 * route targets are nodes and groups, a hand-off port maps back to its
 * service and origin).
 */
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "qt.h"

#define KEYDIR	"/dev/shm/qtfuzz-config"
#define FILEMAX	(1 << 20)

static const char *const keyfiles[] = {
	KEYDIR "/good.key", KEYDIR "/bad.key", KEYDIR "/missing.key",
};

static int		 memfd = -1;
static char		 path[64];
static char		*text;
static char		 errbuf[1 << 16];
static struct qt_config	 cf;

static void
put_file(const char *name, const char *content)
{
	FILE *f = fopen(name, "w");

	FUZZ_CHECK(f != NULL);
	FUZZ_CHECK(fputs(content, f) >= 0);
	FUZZ_CHECK(fclose(f) == 0);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	FUZZ_CHECK(auth_init() == 0);
	log_set_level(-1);	/* every input has errors: keep them quiet */
	(void)mkdir(KEYDIR, 0700);
	put_file(keyfiles[0], "404142434445464748494a4b4c4d4e4f"
	    "505152535455565758595a5b5c5d5e5f\n");
	put_file(keyfiles[1], "not a key\n");
	(void)unlink(keyfiles[2]);
	memfd = memfd_create("qtfuzz.conf", MFD_CLOEXEC);
	FUZZ_CHECK(memfd >= 0);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
	text = malloc(FILEMAX);
	FUZZ_CHECK(text != NULL);
	return 0;
}

/* The first word of a line as config.c's split() sees it. */
static size_t
first_word(const char *l, size_t n, size_t *start)
{
	size_t i = 0, s;

	while (i < n && (l[i] == ' ' || l[i] == '\t'))
		i++;
	for (s = i; i < n && l[i] != ' ' && l[i] != '\t' && l[i] != '\r' &&
	    l[i] != '#' && l[i] != '\0'; i++)
		;
	*start = s;
	return i - s;
}

/* The input with its key file lines pointed at the harness's files. */
static size_t
rewrite(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data, *l, *nl;
	size_t o = 0, n, w, s, k;

	for (l = in; l < in + size; l += n) {
		nl = memchr(l, '\n', (size_t)(in + size - l));
		n = nl ? (size_t)(nl - l) + 1 : (size_t)(in + size - l);
		w = first_word(l, nl ? n - 1 : n, &s);
		if ((w == 8 && memcmp(l + s, "key-file", 8) == 0) ||
		    (w == 15 && memcmp(l + s, "accept-key-file", 15) == 0)) {
			k = 0;
			if (memmem(l + s + w, n - s - w, "bad", 3))
				k = 1;
			else if (memmem(l + s + w, n - s - w, "missing", 7))
				k = 2;
			o += (size_t)snprintf(text + o, FILEMAX - o, "%.*s %s\n",
			    (int)w, l + s, keyfiles[k]);
			continue;
		}
		memcpy(text + o, l, n);
		o += n;
	}
	return o;
}

static void
check_config(const struct qt_config *c)
{
	size_t i, j, svc;
	int origin;

	FUZZ_CHECK(c->c_self >= 0 && (size_t)c->c_self < c->c_nnodes);
	FUZZ_CHECK(c->c_nsvcs >= 1 && c->c_nsvcs <= QT_MAX_SVCS);
	FUZZ_CHECK(c->c_nnodes < QT_MAX_NODES);
	for (i = 0; i < c->c_nnodes; i++) {
		const struct qt_node *n = &c->c_nodes[i];

		FUZZ_CHECK(n->n_id >= 1 && n->n_id < QT_MAX_NODES);
		FUZZ_CHECK(n->n_name[0] != '\0' &&
		    memchr(n->n_name, '\0', QT_NAME_MAX) != NULL);
		FUZZ_CHECK(config_node_by_id(c, n->n_id) == (int)i);
		FUZZ_CHECK(config_node_by_addr(c, n->n_addr) == (int)i);
		for (svc = 0; svc < c->c_nsvcs; svc++) {
			uint16_t p = config_hoport(c, svc, n->n_id);
			size_t s2;

			FUZZ_CHECK(p > c->c_svcs[svc].s_hobase);
			FUZZ_CHECK(config_hoport_owner(c, p, &s2,
			    &origin) == 0 && s2 == svc && origin == (int)i);
		}
	}
	for (i = 0; i < c->c_ngroups; i++)
		for (j = 0; j < QT_MAX_NODES; j++)
			if (c->c_groups[i].g_ids & 1ull << j)
				FUZZ_CHECK(config_node_by_id(c,
				    (uint32_t)j) >= 0);
	for (i = 0; i < c->c_nroutes; i++) {
		const struct qt_route *r = &c->c_routes[i];

		if (r->r_action == RT_NODE)
			FUZZ_CHECK(config_node_by_id(c, r->r_arg) >= 0);
		else if (r->r_action == RT_GROUP)
			FUZZ_CHECK(r->r_arg < c->c_ngroups);
		else if (r->r_action == RT_REJECT)
			FUZZ_CHECK(r->r_arg >= 400 && r->r_arg <= 599);
		FUZZ_CHECK(r->r_prefix[0] == '\0' || r->r_prefix[0] == '/');
	}
	FUZZ_CHECK(c->c_dead_after >= 2 * c->c_hb_interval);
	FUZZ_CHECK(c->c_key_file[0] != '\0');
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t k[QT_KEY_LEN];
	char keytext[256];
	size_t len, i, lines;
	int errors;

	/* Room for every key line to grow into a harness path. */
	if (size > FILEMAX / 8)
		return 0;
	/* The key file's text, as cf_key_read hands it over. */
	memset(keytext, 0, sizeof(keytext));
	memcpy(keytext, data, size < sizeof(keytext) - 1 ? size :
	    sizeof(keytext) - 1);
	(void)auth_key_parse(keytext, k);

	len = rewrite(data, size);
	FUZZ_CHECK(ftruncate(memfd, 0) == 0);
	FUZZ_CHECK(pwrite(memfd, text, len, 0) == (ssize_t)len);
	errors = config_load_errors(path, &cf, errbuf, sizeof(errbuf));
	FUZZ_CHECK(errors >= 0);
	FUZZ_CHECK(memchr(errbuf, '\0', sizeof(errbuf)) != NULL);
	/* One line per error, unless the buffer filled up. */
	if (strlen(errbuf) < sizeof(errbuf) - 1) {
		for (i = 0, lines = 0; errbuf[i]; i++)
			lines += errbuf[i] == '\n';
		FUZZ_CHECK(lines == (size_t)errors);
	}
	if (errors == 0)
		check_config(&cf);
	return 0;
}
