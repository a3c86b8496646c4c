/*
 * Test-only stand-in for Windows' bcryptprimitives.dll, for running zc.exe
 * under Wine 8.0 (Debian 12), which lacks that DLL.
 *
 * Rust's std (1.78+) on Windows draws its random numbers (HashMap seeds)
 * from ProcessPrng in bcryptprimitives.dll. This stub exports ProcessPrng and
 * forwards it to RtlGenRandom (advapi32!SystemFunction036), which Wine has.
 * It is placed next to zc.exe only in CI; it is never shipped.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
