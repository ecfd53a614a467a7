/* Time from dlopen() to the first answered call, in a fresh process (tests/benches/scale.rs).
 *
 *   dlopen_first_call LIB version          mc_version_get() (then, untimed: mc_abi_version_get()
 *                                          must be ABI 2, as a dynamically loading host checks)
 *   dlopen_first_call LIB open STORE       mc_client_open() on a store that does not exist yet
 *   dlopen_first_call LIB sym SYMBOL       any `const char *SYMBOL(void)` (peers: curl_version, ...)
 *
 * Prints the nanoseconds from just before dlopen() to just after the call returned. */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* MC_ABI_VERSION of include/mailconnect.h (not included: the program also times other libraries). */
#define EXPECTED_ABI 2u

typedef const char *(*str_fn)(void);
typedef uint32_t (*abi_fn)(void);
typedef int32_t (*open_fn)(const char *, void **);
typedef void (*free_fn)(void *);

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s LIB version|open STORE|sym SYMBOL\n", argv[0]);
        return 2;
    }
    long long t0 = now_ns();
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 1;
    }
    if (strcmp(argv[2], "version") == 0 || strcmp(argv[2], "sym") == 0) {
        const char *name = strcmp(argv[2], "version") == 0 ? "mc_version_get" : (argc > 3 ? argv[3] : "");
        str_fn f = (str_fn)dlsym(lib, name);
        if (!f) {
            fprintf(stderr, "dlsym %s: %s\n", name, dlerror());
            return 1;
        }
        const char *v = f();
        long long t1 = now_ns();
        if (!v || !*v) return 1;
        if (strcmp(argv[2], "version") == 0) {
            abi_fn abi = (abi_fn)dlsym(lib, "mc_abi_version_get");
            if (!abi || abi() != EXPECTED_ABI) {
                fprintf(stderr, "mc_abi_version_get: %u, want %u\n", abi ? abi() : 0u, EXPECTED_ABI);
                return 1;
            }
        }
        printf("%lld\n", t1 - t0);
        return 0;
    }
    if (strcmp(argv[2], "open") == 0 && argc > 3) {
        open_fn op = (open_fn)dlsym(lib, "mc_client_open");
        free_fn fr = (free_fn)dlsym(lib, "mc_client_free");
        if (!op || !fr) return 1;
        char json[4096];
        snprintf(json, sizeof json, "{\"store\":\"%s\"}", argv[3]);
        void *client = NULL;
        int32_t rc = op(json, &client);
        long long t1 = now_ns();
        if (rc != 0 || !client) {
            fprintf(stderr, "mc_client_open: %d\n", rc);
            return 1;
        }
        fr(client);
        printf("%lld\n", t1 - t0);
        return 0;
    }
    return 2;
}
