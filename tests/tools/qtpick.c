/*
 * qtpick: which node id the consistent hash gives each path, for tests
 * that check a request was served where the hash says.
 *
 *   qtpick ID:WEIGHT[,ID:WEIGHT...] PATH...
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

int
main(int argc, char **argv)
{
	struct chash_node nodes[64];
	size_t n = 0;
	char *spec, *tok, *save;
	char path[PATH_MAX];
	int i, len, w;

	if (argc < 3) {
		fprintf(stderr, "usage: qtpick ID:WEIGHT[,...] PATH...\n");
		return 2;
	}
	spec = strdup(argv[1]);
	for (tok = strtok_r(spec, ",", &save); tok && n < 64;
	    tok = strtok_r(NULL, ",", &save)) {
		if (sscanf(tok, "%u:%d", &nodes[n].cn_id, &w) != 2)
			return 2;
		nodes[n].cn_weight = (uint32_t)w;
		nodes[n].cn_up = 1;
		n++;
	}
	for (i = 2; i < argc; i++) {
		len = http_path(argv[i], strlen(argv[i]), path, sizeof(path));
		if (len < 0) {
			printf("-\n");
			continue;
		}
		w = chash_pick(nodes, n, chash_key(path, (size_t)len));
		printf("%u\n", w < 0 ? 0 : nodes[w].cn_id);
	}
	free(spec);
	return 0;
}
