/*
 * TEST-ONLY stand-in for bcryptprimitives.dll, for running wictl.exe under Wine 8.0. Never
 * shipped, never packaged.
 *
 * Rust's std for Windows gets random bytes (HashMap seeds) from ProcessPrng in
 * bcryptprimitives.dll, which Windows 10 and later have and Wine 8.0 does not, so without this
 * wictl.exe does not start under Wine. The Wine stage (xtask/src/wine.rs) builds it next to
 * wictl.exe in target/wine/run/, where the loader looks first. It forwards to BCryptGenRandom
 * with the system-preferred generator, which Wine implements.
 */
#include <windows.h>
#include <bcrypt.h>

BOOL WINAPI DllMain(HINSTANCE module, DWORD reason, LPVOID reserved)
{
    (void)module; (void)reason; (void)reserved;
    return TRUE;
}

/* Fills `len` bytes; TRUE on success (ProcessPrng's documented contract: it does not fail). */
BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len) {
        ULONG chunk = len > 0x40000000u ? 0x40000000u : (ULONG)len;
        if (!BCRYPT_SUCCESS(BCryptGenRandom(NULL, data, chunk, BCRYPT_USE_SYSTEM_PREFERRED_RNG)))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
