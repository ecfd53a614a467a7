/*
 * What the C test hosts in tests/c share: the CHECK macro ("ok <what>" on stdout; on failure
 * "FAIL file:line what: status (message) diagnostic" on stderr and a count), a substring test and
 * JSON escaping for paths put into options (Windows paths have backslashes). ISO C11 only.
 */
#ifndef MC_TEST_CHECK_H
#define MC_TEST_CHECK_H

#include <stdio.h>
#include <string.h>

#include "mailconnect.h"

static int failures = 0;

#define CHECK(cond, what)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FAIL %s:%d %s: %s (%s) %s\n", __FILE__, __LINE__, what,               \
                    mc_result_name_get(mc_error_code_get()), mc_error_message_get(),                 \
                    mc_error_diagnostic_get());                                                   \
            failures++;                                                                            \
        } else {                                                                                   \
            printf("ok %s\n", what);                                                              \
        }                                                                                          \
    } while (0)

static inline int contains(const char *hay, const char *needle) { return hay && needle && strstr(hay, needle) != NULL; }

/* s as the inside of a JSON string (backslashes and quotes escaped), truncated to fit cap. */
static inline const char *json_escape(const char *s, char *out, size_t cap) {
    size_t o = 0;
    for (; s && *s && o + 2 < cap; s++) {
        if (*s == '\\' || *s == '"') out[o++] = '\\';
        out[o++] = *s;
    }
    out[o] = 0;
    return out;
}

#endif
