/*
 * Test-only stand-in for Windows 10's bcryptprimitives.dll, which Wine 8 lacks.
 *
 * Rust's std (1.78 and later) imports ProcessPrng from bcryptprimitives.dll for its random numbers
 * (HashMap seeds and the like). Windows 10 and later ship it; Wine 8.0, the newest Wine Debian 12
 * has, does not, so every Rust DLL fails to load there (LoadLibrary error 126). tests/windows/run.sh
 * copies this into the Wine prefix's system32 (64-bit) and syswow64 (32-bit) so the real
 * mailconnect.dll can be tested under Wine. It is never shipped: real Windows has its own.
 *
 * ProcessPrng fills the buffer from RtlGenRandom (advapi32's SystemFunction036), in chunks that
 * fit its ULONG length, and like the real one never fails.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk)) {
            return FALSE;
        }
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}

BOOL WINAPI DllMain(HINSTANCE instance, DWORD reason, LPVOID reserved) {
    (void)instance;
    (void)reason;
    (void)reserved;
    return TRUE;
}
