/*
 * wincheck: what the Windows tests (tests/windows.rs) look at from the outside, with Win32 only,
 * so nothing of mailconnect's own code vouches for itself. Built with MinGW, run under Wine.
 *
 *   wincheck sid                 the SID of the user this process runs as
 *   wincheck acl PATH            the file's DACL in SDDL, and whether it is protected (no inheritance)
 *   wincheck version DLL         the DLL's version resource (what Explorer's Properties show)
 *   wincheck browse URL          a stand-in browser: appends URL to the file in %WINCHECK_BROWSE_LOG%
 *   wincheck sleep SECONDS       a program that stays (Wine ends services when the session's last ends)
 *   wincheck load DLL OPTS N     LoadLibrary -> first call (mc_abi_version_get, which must be
 *                                MC_ABI_VERSION), then mc_client_open(OPTS) N times (µs)
 *
 * Exit status 0 on success; results on stdout as "key value" lines.
 */
#define UNICODE
#define _UNICODE
#include <windows.h>
#include <aclapi.h>
#include <sddl.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mailconnect.h"

static wchar_t *widen(const char *s) {
    int n = MultiByteToWideChar(CP_UTF8, 0, s, -1, NULL, 0);
    wchar_t *w = (wchar_t *)calloc((size_t)n + 1, sizeof(wchar_t));
    if (w) MultiByteToWideChar(CP_UTF8, 0, s, -1, w, n);
    return w;
}

static void print_wide(const char *key, const wchar_t *w) {
    int n = WideCharToMultiByte(CP_UTF8, 0, w, -1, NULL, 0, NULL, NULL);
    char *s = (char *)calloc((size_t)n + 1, 1);
    if (!s) return;
    WideCharToMultiByte(CP_UTF8, 0, w, -1, s, n, NULL, NULL);
    printf("%s %s\n", key, s);
    free(s);
}

static int sid(void) {
    HANDLE token;
    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token)) return 1;
    DWORD len = 0;
    GetTokenInformation(token, TokenUser, NULL, 0, &len);
    TOKEN_USER *user = (TOKEN_USER *)malloc(len);
    if (!user || !GetTokenInformation(token, TokenUser, user, len, &len)) return 1;
    wchar_t *text = NULL;
    if (!ConvertSidToStringSidW(user->User.Sid, &text)) return 1;
    print_wide("SID", text);
    LocalFree(text);
    free(user);
    CloseHandle(token);
    return 0;
}

static int acl(const char *path) {
    wchar_t *w = widen(path);
    PSECURITY_DESCRIPTOR sd = NULL;
    PACL dacl = NULL;
    DWORD rc = GetNamedSecurityInfoW(w, SE_FILE_OBJECT, DACL_SECURITY_INFORMATION, NULL, NULL, &dacl, NULL, &sd);
    free(w);
    if (rc != ERROR_SUCCESS) {
        printf("ERROR GetNamedSecurityInfoW %lu\n", (unsigned long)rc);
        return 1;
    }
    SECURITY_DESCRIPTOR_CONTROL control = 0;
    DWORD revision = 0;
    GetSecurityDescriptorControl(sd, &control, &revision);
    wchar_t *text = NULL;
    if (!ConvertSecurityDescriptorToStringSecurityDescriptorW(sd, SDDL_REVISION_1, DACL_SECURITY_INFORMATION, &text, NULL)) {
        printf("ERROR ConvertSecurityDescriptorToStringSecurityDescriptorW %lu\n", (unsigned long)GetLastError());
        return 1;
    }
    print_wide("SDDL", text);
    printf("PROTECTED %s\n", (control & SE_DACL_PROTECTED) ? "yes" : "no");
    printf("ACES %u\n", dacl ? (unsigned)dacl->AceCount : 0u);
    LocalFree(text);
    LocalFree(sd);
    return 0;
}

static int version(const char *dll) {
    wchar_t *w = widen(dll);
    DWORD handle = 0;
    DWORD size = GetFileVersionInfoSizeW(w, &handle);
    if (size == 0) {
        printf("ERROR no version resource (%lu)\n", (unsigned long)GetLastError());
        free(w);
        return 1;
    }
    void *data = malloc(size);
    if (!data || !GetFileVersionInfoW(w, 0, size, data)) {
        free(w);
        return 1;
    }
    free(w);
    VS_FIXEDFILEINFO *fixed = NULL;
    UINT len = 0;
    if (VerQueryValueW(data, L"\\", (void **)&fixed, &len) && fixed) {
        printf("FILEVERSION %u.%u.%u.%u\n", (unsigned)HIWORD(fixed->dwFileVersionMS), (unsigned)LOWORD(fixed->dwFileVersionMS),
               (unsigned)HIWORD(fixed->dwFileVersionLS), (unsigned)LOWORD(fixed->dwFileVersionLS));
        printf("FILETYPE %s\n", fixed->dwFileType == VFT_DLL ? "dll" : fixed->dwFileType == VFT_APP ? "app" : "other");
    }
    const wchar_t *names[] = {L"ProductName", L"ProductVersion", L"FileVersion", L"FileDescription", L"LegalCopyright",
                              L"OriginalFilename", L"CompanyName"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        wchar_t query[128];
        _snwprintf(query, 128, L"\\StringFileInfo\\040904b0\\%ls", names[i]);
        wchar_t *value = NULL;
        if (VerQueryValueW(data, query, (void **)&value, &len) && value) {
            char key[64];
            WideCharToMultiByte(CP_UTF8, 0, names[i], -1, key, sizeof key, NULL, NULL);
            print_wide(key, value);
        }
    }
    free(data);
    return 0;
}

static int browse(const char *url) {
    const char *log = getenv("WINCHECK_BROWSE_LOG");
    if (!log) return 1;
    FILE *f = fopen(log, "ab");
    if (!f) return 1;
    fprintf(f, "%s\n", url);
    fclose(f);
    return 0;
}

typedef uint32_t(MC_CALL *abi_fn)(void);
typedef int32_t(MC_CALL *open_fn)(const char *, mc_client **);
typedef void(MC_CALL *free_fn)(mc_client *);

static double now_us(void) {
    static LARGE_INTEGER freq;
    LARGE_INTEGER t;
    if (!freq.QuadPart) QueryPerformanceFrequency(&freq);
    QueryPerformanceCounter(&t);
    return (double)t.QuadPart * 1e6 / (double)freq.QuadPart;
}

typedef void *(WINAPI *winhttp_open_fn)(const wchar_t *, DWORD, const wchar_t *, const wchar_t *, DWORD);
typedef BOOL(WINAPI *winhttp_close_fn)(void *);

static int load(const char *dll, const char *options, int n) {
    /* The peer, first: Windows' own HTTP client, LoadLibrary("winhttp.dll") -> WinHttpOpen. */
    double p0 = now_us();
    HMODULE winhttp = LoadLibraryW(L"winhttp.dll");
    winhttp_open_fn wopen = winhttp ? (winhttp_open_fn)(void (*)(void))GetProcAddress(winhttp, "WinHttpOpen") : NULL;
    winhttp_close_fn wclose = winhttp ? (winhttp_close_fn)(void (*)(void))GetProcAddress(winhttp, "WinHttpCloseHandle") : NULL;
    void *session = wopen ? wopen(L"wincheck", 1, NULL, NULL, 0) : NULL;
    double p1 = now_us();
    if (session && wclose) wclose(session);
    if (session) printf("PEER_WINHTTP_US %.0f\n", p1 - p0);
    wchar_t *w = widen(dll);
    double t0 = now_us();
    HMODULE lib = LoadLibraryW(w);
    free(w);
    if (!lib) {
        printf("ERROR LoadLibrary %lu\n", (unsigned long)GetLastError());
        return 1;
    }
    abi_fn abi = (abi_fn)(void (*)(void))GetProcAddress(lib, "mc_abi_version_get");
    open_fn open = (open_fn)(void (*)(void))GetProcAddress(lib, "mc_client_open");
    free_fn close = (free_fn)(void (*)(void))GetProcAddress(lib, "mc_client_free");
    if (!abi || !open || !close) return 1;
    uint32_t v = abi();
    double t1 = now_us();
    printf("ABI %u\n", (unsigned)v);
    if (v != MC_ABI_VERSION) { /* a dynamically loading host checks this first (mailconnect.h, rule 8) */
        printf("ERROR the DLL has ABI %u, the header %u\n", (unsigned)v, (unsigned)MC_ABI_VERSION);
        return 1;
    }
    printf("LOAD_FIRST_CALL_US %.0f\n", t1 - t0);
    double best = 1e18, total = 0;
    for (int i = 0; i < n; i++) {
        mc_client *c = NULL;
        double a = now_us();
        int32_t rc = open(options, &c);
        double b = now_us();
        if (rc != 0 || !c) {
            printf("ERROR mc_client_open %d\n", (int)rc);
            return 1;
        }
        close(c);
        total += b - a;
        if (b - a < best) best = b - a;
    }
    printf("CLIENT_OPEN_BEST_US %.0f\n", best);
    printf("CLIENT_OPEN_MEAN_US %.0f\n", total / n);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "sid") == 0) return sid();
    if (argc >= 3 && strcmp(argv[1], "acl") == 0) return acl(argv[2]);
    if (argc >= 3 && strcmp(argv[1], "version") == 0) return version(argv[2]);
    if (argc >= 3 && strcmp(argv[1], "browse") == 0) return browse(argv[2]);
    if (argc >= 3 && strcmp(argv[1], "sleep") == 0) {
        Sleep((DWORD)atoi(argv[2]) * 1000u);
        return 0;
    }
    if (argc >= 5 && strcmp(argv[1], "load") == 0) return load(argv[2], argv[3], atoi(argv[4]));
    fprintf(stderr, "usage: wincheck sid|acl PATH|version DLL|browse URL|sleep SECONDS|load DLL OPTIONS_JSON N\n");
    return 2;
}
