/*
 * qtforge: sends a hand-off replay to a back as a forger would, with a key
 * of the caller's choosing, so tests can check a back rejects it.
 *
 *   qtforge KEYFILE CLIENT_IP CLIENT_PORT BACK_IP BACK_PORT ORIGIN_ID
 *       [tamper | stale | dup | truncated | reorder]
 *
 * tamper     signs the request, then changes one byte of it
 * stale      a header 60 s old
 * dup        the same replay twice
 * truncated  the SYN's header cut short
 * reorder    the request segment before a SYN that carries none of it
 * Must run where CLIENT_IP may be sent from (raw socket).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/tcp.h>

#include "qt.h"

int
main(int argc, char **argv)
{
	char req[] = "GET /forged HTTP/1.1\r\nHost: x\r\n\r\n";
	uint8_t key[QT_KEY_LEN], hbuf[HDR_LEN];
	char text[256] = { 0 }, err[256];
	struct hdr_tuple t;
	struct hdr h = { 0 };
	struct replay *r;
	FILE *f;
	const char *mode = argc > 7 ? argv[7] : NULL;
	int rc;

	if (argc < 7 || auth_init() == -1)
		return 2;
	if (!(f = fopen(argv[1], "r")) || !fread(text, 1, sizeof(text) - 1, f)
	    || auth_key_parse(text, key) == -1) {
		fprintf(stderr, "qtforge: bad key file\n");
		return 2;
	}
	fclose(f);
	t.t_cip = inet_addr(argv[2]);
	t.t_cport = htons((uint16_t)atoi(argv[3]));
	t.t_bip = inet_addr(argv[4]);
	t.t_bport = htons((uint16_t)atoi(argv[5]));
	h.h_origin = (uint32_t)atoi(argv[6]);
	h.h_svc = 0;
	auth_random(h.h_token, sizeof(h.h_token));
	h.h_time_ms = now_ms() - (mode && !strcmp(mode, "stale") ? 60000 : 0);
	h.h_isn = 1000;
	h.h_req_len = sizeof(req) - 1;
	h.h_rs.rs_snd_seq = 5000;
	h.h_rs.rs_rcv_nxt = h.h_isn + 1 + h.h_req_len;
	h.h_rs.rs_mss = 1460;
	h.h_rs.rs_snd_wnd = h.h_rs.rs_max_window = 64000;
	h.h_rs.rs_rcv_wnd = 64000;
	h.h_rs.rs_rcv_wup = h.h_rs.rs_rcv_nxt;
	h.h_rs.rs_snd_wl1 = h.h_isn + 1;
	hdr_encode(&h, &t, req, key, hbuf);
	if (mode && !strcmp(mode, "tamper"))
		req[5] ^= 1;
	if (mode && !strcmp(mode, "truncated"))
		memset(hbuf, 0, 4);	/* no magic: as if cut before it */
	if (!(r = replay_open(err, sizeof(err)))) {
		fprintf(stderr, "qtforge: %s\n", err);
		return 1;
	}
	if (mode && !strcmp(mode, "reorder")) {
		/* The request alone first (as a zero-length SYN would not
		 * carry it): replay_send's later packets repeat it. */
		rc = replay_send_data(r, &t, h.h_isn, &h.h_rs, req,
		    sizeof(req) - 1);
		if (rc == 0)
			rc = replay_send(r, &t, h.h_isn, &h.h_rs, hbuf, NULL, 0);
	} else {
		rc = replay_send(r, &t, h.h_isn, &h.h_rs, hbuf, req,
		    sizeof(req) - 1);
		if (rc == 0 && mode && !strcmp(mode, "dup"))
			rc = replay_send(r, &t, h.h_isn, &h.h_rs, hbuf, req,
			    sizeof(req) - 1);
	}
	if (rc == -1) {
		perror("qtforge: send");
		return 1;
	}
	replay_close(r);
	return 0;
}
