// Every counter, declared once.  The order is the stats file layout
// ("ZCLSTST3", stats.h): append only, never reorder or remove (a test pins
// it: tests/unit/counters_test.cpp).  Included with the two macros below
// defined, by stats.h (the enum) and stats.cpp (the names); no include
// guard on purpose.
//
//   ZCTLS_COUNTER(key, metric, help)
//     a counter of its own: Prometheus `metric`, whose HELP is `help`.
//   ZCTLS_COPY_REASON(key, reason, about)
//     a reason a send went by copy: zctls_copy_sends_total{reason="reason"}.
//     sends = zerocopy_sends + the sum of all copy reasons.
//
// `key` names it in JSON, the table and the docs.  README ("What the
// counters say") and zctls(1) (COUNTERS) list every one, and the Grafana
// dashboard shows those tests/unit/counters_test.cpp names: adding one
// here makes that test say where else to write it.

ZCTLS_COUNTER(sends, "zctls_sends_total", "sendfile calls on kTLS TX sockets")
ZCTLS_COUNTER(bytes, "zctls_sent_bytes_total", "Bytes sent by sendfile on kTLS TX sockets")
ZCTLS_COUNTER(zerocopy_sends, "zctls_zerocopy_sends_total",
              "Sends with TLS_TX_ZEROCOPY_RO on (set by zctls, or by the application)")
ZCTLS_COUNTER(zerocopy_bytes, "zctls_zerocopy_bytes_total", "Bytes sent with the flag on")
ZCTLS_COPY_REASON(copy_no_rule, "no_rule", "no rule matched, and the default is copy")
ZCTLS_COPY_REASON(copy_rule_off, "rule_off", "a rule says zerocopy = false, or the file is not a regular one (or fstat failed)")
ZCTLS_COPY_REASON(copy_settle, "settle", "the file changed within the settle window")
ZCTLS_COPY_REASON(copy_quarantine, "quarantine", "the file's inode is quarantined after a change")
ZCTLS_COPY_REASON(copy_kernel_unsupported, "kernel_unsupported",
                  "the kernel refuses TLS_TX_ZEROCOPY_RO, or turning the flag on failed")
ZCTLS_COPY_REASON(copy_kernel_quirk, "kernel_quirk",
                  "an unaligned offset on a kernel with the unaligned zerocopy bug")
ZCTLS_COPY_REASON(copy_app_managed, "app_managed", "the application manages the flag itself, and has it off")
ZCTLS_COPY_REASON(copy_no_config, "no_config", "no usable config (zctls passes through)")
ZCTLS_COUNTER(integrity_events, "zctls_integrity_events_total",
              "Files that changed while their bytes were sent zerocopy")
ZCTLS_COUNTER(integrity_events_in_flight, "zctls_integrity_events_in_flight_total",
              "Of those, changes after sendfile returned: before the peer acknowledged, or found "
              "after it on a connection that had retransmitted")
ZCTLS_COUNTER(aborts, "zctls_aborts_total", "Connections shut down by on_change = abort")
ZCTLS_COUNTER(decision_cache_hits, "zctls_decision_cache_hits_total",
              "Per-file decisions found in the cache")
ZCTLS_COUNTER(decision_cache_misses, "zctls_decision_cache_misses_total",
              "Per-file decisions made by matching the rules")
ZCTLS_COUNTER(config_loads, "zctls_config_loads_total", "Configurations loaded")
ZCTLS_COUNTER(config_reloads, "zctls_config_reloads_total",
              "Configurations reloaded after the file changed")
ZCTLS_COUNTER(config_errors, "zctls_config_errors_total", "Configurations rejected")
ZCTLS_COUNTER(flag_off_other_sends, "zctls_flag_off_other_sends_total",
              "Times the flag was turned off before a splice into a kTLS socket")
ZCTLS_COPY_REASON(copy_unlinked, "unlinked", "the file has no name left")
ZCTLS_COPY_REASON(copy_hard_links, "hard_links", "the file has other names (st_nlink > 1)")
ZCTLS_COUNTER(changes_between_sends, "zctls_changes_between_sends_total",
              "Files under a zerocopy rule that changed between two sends, no byte at risk")
ZCTLS_COUNTER(copy_bytes, "zctls_copy_bytes_total", "Bytes sent by copy")
ZCTLS_COPY_REASON(copy_names_unknown, "names_unknown", "the file's names could not be known")
ZCTLS_COUNTER(app_flag_sockets, "zctls_app_flag_sockets_total",
              "kTLS sockets whose TLS_TX_ZEROCOPY_RO the application set itself")
ZCTLS_COUNTER(app_flag_sends, "zctls_app_flag_sends_total",
              "Sends on sockets whose flag the application set")
ZCTLS_COUNTER(app_zerocopy_sends, "zctls_app_zerocopy_sends_total",
              "Of the zerocopy sends, those with the flag as the application set it "
              "(app_flag = respect)")
ZCTLS_COUNTER(app_zerocopy_bytes, "zctls_app_zerocopy_bytes_total", "Bytes of those sends")
ZCTLS_COPY_REASON(copy_software_ktls, "software_ktls",
                  "software kTLS, where the flag has no effect")
ZCTLS_COUNTER(software_tx_sockets, "zctls_software_tx_sockets_total",
              "kTLS TX sockets found to be software kTLS, where the flag has no effect")
ZCTLS_COUNTER(ktls_tx_sockets, "zctls_ktls_tx_sockets_total",
              "kTLS TX sockets (a TX key installed, or first met by a send)")
ZCTLS_COUNTER(ktls_tx_file_sockets, "zctls_ktls_tx_file_sockets_total",
              "Of those, sockets that sent a file by sendfile; the rest never did (generated or "
              "proxied responses only, for instance), and zctls had nothing to decide on them")
ZCTLS_COUNTER(software_tls13_sockets, "zctls_software_tls13_sockets_total",
              "Of the software kTLS TX sockets, those with a TLS 1.3 key: device offload takes "
              "TLS 1.2 keys only (every kernel up to " ZCTLS_NEWEST_KNOWN_KERNEL
              "), so these are software whatever the NIC")
