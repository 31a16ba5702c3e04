/* A shared library with nothing in it: preloaded by bench/run beside
 * closes.c to measure what the dynamic loader charges for any preloaded
 * library, the floor under libzctls.so's own cost. */
int zctls_bench_empty_preload(void) { return 0; }
