using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace EioSharp.Tracing;

/// <summary>The clock of the trace rings: the CPU's time-stamp counter where that is cheap and safe, else
/// <see cref="Stopwatch.GetTimestamp"/>.</summary>
/// <remarks>
/// .NET has no <c>rdtsc</c> intrinsic, and <see cref="Stopwatch.GetTimestamp"/> on Linux is a native call to
/// <c>clock_gettime</c> (measured here: ~24 ns of CPU per read against ~10 ns for a bare <c>rdtsc</c>; a fiber switch
/// costs ~70-100 ns, so the clock was most of the tracing overhead). On Linux x64, when the CPU has an invariant TSC
/// (CPUID 0x80000007 EDX bit 8) and the kernel itself uses the TSC as its clock source (it checked that the counters of
/// all CPUs are synchronised), or <c>EIOSHARP_TRACE_CLOCK=tsc</c> says they are (a VM guest whose kernel uses its
/// hypervisor's clock, see <see cref="ChoosesTsc"/>), a 13-byte routine (<c>lfence; rdtsc; shl rdx,32; or rax,rdx; ret</c>)
/// is placed in an executable page and called through an unmanaged function pointer without a GC transition. The
/// <c>lfence</c> keeps the read after the instructions before it, as the kernel's <c>rdtsc_ordered</c> in
/// <c>clock_gettime</c> does (issue 17, h122: a bare <c>rdtsc</c> could execute before the load that saw another
/// domain's wake-up and read an earlier time than the waker's; measured on a 2-CPU guest, 8,163 of 169,541 cross-CPU
/// handovers read up to 399 cycles back, none with the fence). Anything else (another OS or architecture, a VM clock
/// source without the opt-in, a refused <c>mprotect</c>, <c>EIOSHARP_TRACE_CLOCK=stopwatch</c>) uses
/// <see cref="Monotonic"/> or the stopwatch.
/// <para>Raw readings are stored in the rings and converted to <see cref="Stopwatch"/> ticks when read
/// (<see cref="ToStopwatch"/>): the rate is measured between an anchor taken when the clock is set up and the latest
/// <see cref="Recalibrate"/> (each drain of the rings), so a converted time is off by at most the jitter of one pair of
/// readings (well under a microsecond), not by a rate error that grows with the trace's length.</para>
/// </remarks>
internal static unsafe partial class TraceClock
{
    private static readonly delegate* unmanaged[SuppressGCTransition]<ulong> s_rdtsc;

    /// <summary>The time-stamp counter routine when <see cref="IsTsc"/>, else null: the switch hooks call it directly
    /// (issue 17: one call less than <see cref="Now"/> where the JIT does not inline).</summary>
    public static readonly delegate* unmanaged[SuppressGCTransition]<ulong> Tsc;

    /// <summary>True when <see cref="Now"/> reads the time-stamp counter (else it is <see cref="Monotonic"/> or <see cref="Stopwatch.GetTimestamp"/>).</summary>
    public static readonly bool IsTsc;

    /// <summary>When the time-stamp counter is not used: <c>clock_gettime</c> itself (the vDSO's <c>__vdso_clock_gettime</c>,
    /// else libc's), called through an unmanaged function pointer without a GC transition, on Linux where
    /// <see cref="Stopwatch"/> counts nanoseconds of <c>CLOCK_MONOTONIC</c>; else null (the stopwatch is called).</summary>
    /// <remarks>Issue 17 (h102): where the kernel's clock source is not the TSC (a KVM guest's <c>kvm-clock</c>, a
    /// <c>tsc=unstable</c> boot), every fiber switch read <see cref="Stopwatch.GetTimestamp"/>: a call to the runtime's
    /// <c>SystemNative_GetTimestamp</c> (21 instructions counted by valgrind) and from it to libc's <c>clock_gettime</c>
    /// (10 more) and from that to the vDSO. Calling the vDSO's entry directly skips both wrappers; the reading is the same
    /// clock in the same unit, so it is Stopwatch ticks as is (checked against the stopwatch when set up).</remarks>
    public static readonly delegate* unmanaged[SuppressGCTransition]<int, Timespec*, int> Monotonic;

    /// <summary>True when <see cref="Monotonic"/> is set (for tests and diagnostics).</summary>
    public static bool IsDirectMonotonic => Monotonic != null;

    /// <summary>The <c>struct timespec</c> of x64/arm64 Linux.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct Timespec
    {
        /// <summary>Seconds.</summary>
        public long Sec;

        /// <summary>Nanoseconds (0-999,999,999).</summary>
        public long Nsec;
    }

    private const int ClockMonotonic = 1; // CLOCK_MONOTONIC on Linux

    private static readonly long s_tscAnchor;
    private static readonly long s_swAnchor;
    private static double s_ticksPerCount = 1.0; // Stopwatch ticks per TSC count
    private static long s_lastTsc;

    static TraceClock()
    {
        try
        {
            s_rdtsc = TryMakeRdtsc();
        }
        catch (Exception)
        {
            s_rdtsc = null; // no P/Invoke to libc (not glibc/musl Linux): the stopwatch it is
        }

        if (s_rdtsc is null)
        {
            try
            {
                Monotonic = TryFindClockGettime();
            }
            catch (Exception)
            {
                Monotonic = null; // the stopwatch it is
            }

            return;
        }

        IsTsc = true;
        Tsc = s_rdtsc;
        s_tscAnchor = (long)s_rdtsc();
        s_swAnchor = Stopwatch.GetTimestamp();
        s_lastTsc = s_tscAnchor;
        // A first rate from a short measurement, replaced by a better one at each drain.
        var sw = Stopwatch.StartNew();
        while (sw.ElapsedTicks < Stopwatch.Frequency / 2000)
        {
            Thread.SpinWait(20);
        }

        Recalibrate();
    }

    /// <summary>The current raw reading (time-stamp counts or stopwatch ticks); convert with <see cref="ToStopwatch"/>.</summary>
    /// <remarks>Inlined into the hooks that read the clock: with the clock's fields read-only statics initialised before
    /// the hooks are compiled, the JIT keeps only the branch of the clock in use.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    [SkipLocalsInit] // the timespec is written by clock_gettime before it is read (issue 17, h110)
    public static long Now()
    {
        var tsc = Tsc;
        if (tsc != null)
        {
            return (long)tsc();
        }

        var mono = Monotonic;
        if (mono != null)
        {
            Timespec t;
            mono(ClockMonotonic, &t);
            return (t.Sec * 1_000_000_000) + t.Nsec;
        }

        return Stopwatch.GetTimestamp();
    }

    /// <summary>Converts a raw reading of <see cref="Now"/> to <see cref="Stopwatch"/> ticks.</summary>
    public static long ToStopwatch(long raw) =>
        IsTsc ? s_swAnchor + (long)Math.Round((raw - s_tscAnchor) * Volatile.Read(ref s_ticksPerCount)) : raw;

    /// <summary>Measures the counter's rate again over the whole time since the anchor (called before each drain of the rings).</summary>
    public static void Recalibrate()
    {
        if (!IsTsc)
        {
            return;
        }

        long sw = Stopwatch.GetTimestamp();
        long tsc = (long)s_rdtsc();
        long sw2 = Stopwatch.GetTimestamp();
        lock (typeof(TraceClock))
        {
            if (tsc - s_lastTsc <= 0 || tsc - s_tscAnchor <= 0)
            {
                return;
            }

            s_lastTsc = tsc;
            double midSw = (sw + sw2) / 2.0;
            Volatile.Write(ref s_ticksPerCount, (midSw - s_swAnchor) / (tsc - s_tscAnchor));
        }
    }

    /// <summary>The vDSO's or libc's <c>clock_gettime</c> when a reading of <c>CLOCK_MONOTONIC</c> in nanoseconds is a
    /// <see cref="Stopwatch"/> timestamp (Linux: the runtime's <c>SystemNative_GetTimestamp</c> reads that clock), else null.</summary>
    private static delegate* unmanaged[SuppressGCTransition]<int, Timespec*, int> TryFindClockGettime()
    {
        if (!OperatingSystem.IsLinux() || Stopwatch.Frequency != 1_000_000_000
            || (RuntimeInformation.ProcessArchitecture != Architecture.X64 && RuntimeInformation.ProcessArchitecture != Architecture.Arm64)
            || Environment.GetEnvironmentVariable("EIOSHARP_TRACE_CLOCK") == "stopwatch")
        {
            return null;
        }

        // The vDSO is loaded in every Linux process (not under valgrind, which hides it: then libc's entry, which makes
        // the system call).
        nint f = 0;
        if (NativeLibrary.TryLoad("linux-vdso.so.1", out var vdso))
        {
            NativeLibrary.TryGetExport(vdso, "__vdso_clock_gettime", out f);
        }

        if (f == 0 && NativeLibrary.TryLoad("libc.so.6", out var libc))
        {
            NativeLibrary.TryGetExport(libc, "clock_gettime", out f);
        }

        if (f == 0)
        {
            return null;
        }

        // The same clock as the stopwatch's: a reading lies between two stopwatch readings taken around it.
        var p = (delegate* unmanaged[SuppressGCTransition]<int, Timespec*, int>)f;
        for (int i = 0; i < 3; i++)
        {
            Timespec t;
            long before = Stopwatch.GetTimestamp();
            int rc = p(ClockMonotonic, &t);
            long after = Stopwatch.GetTimestamp();
            long v = (t.Sec * 1_000_000_000) + t.Nsec;
            if (rc == 0 && before <= v && v <= after)
            {
                return p;
            }
        }

        return null;
    }

    private static delegate* unmanaged[SuppressGCTransition]<ulong> TryMakeRdtsc()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64 || !X86Base.IsSupported
            || Environment.GetEnvironmentVariable("EIOSHARP_TRACE_CLOCK") == "stopwatch")
        {
            return null;
        }

        var (_, _, _, edx) = X86Base.CpuId(unchecked((int)0x80000007), 0);
        const string source = "/sys/devices/system/clocksource/clocksource0/current_clocksource";
        string? clockSource = File.Exists(source) ? File.ReadAllText(source).Trim() : null;
        if (!ChoosesTsc((edx & (1 << 8)) != 0, clockSource, Environment.GetEnvironmentVariable("EIOSHARP_TRACE_CLOCK")))
        {
            return null;
        }

        // lfence; rdtsc; shl rdx,32; or rax,rdx; ret (the fence: see the class remarks).
        ReadOnlySpan<byte> code = [0x0F, 0xAE, 0xE8, 0x0F, 0x31, 0x48, 0xC1, 0xE2, 0x20, 0x48, 0x09, 0xD0, 0xC3];
        const int ProtRead = 1, ProtWrite = 2, ProtExec = 4, MapPrivate = 2, MapAnonymous = 0x20;
        nint page = mmap(0, 4096, ProtRead | ProtWrite, MapPrivate | MapAnonymous, -1, 0);
        if (page == -1 || page == 0)
        {
            return null;
        }

        code.CopyTo(new Span<byte>((void*)page, code.Length));
        if (mprotect(page, 4096, ProtRead | ProtExec) != 0)
        {
            munmap(page, 4096);
            return null;
        }

        var f = (delegate* unmanaged[SuppressGCTransition]<ulong>)page;
        ulong a = f(), b = f();
        return b >= a && a != 0 ? f : null;
    }

    /// <summary>Whether the trace clock is the time-stamp counter, on Linux x64 (the caller checked those).</summary>
    /// <param name="invariantTsc">The CPU's TSC runs at a constant rate in every power state (CPUID 0x80000007 EDX bit 8).</param>
    /// <param name="clockSource">The kernel's current clock source (<c>tsc</c>, <c>kvm-clock</c>, ...), or null if unknown.</param>
    /// <param name="setting">The <c>EIOSHARP_TRACE_CLOCK</c> environment variable, or null.</param>
    /// <returns>True with an invariant TSC when the kernel's clock source is <c>tsc</c> (it checked that all CPUs' counters
    /// agree) unless the setting is <c>stopwatch</c>, or when the setting is <c>tsc</c> whatever the clock source.</returns>
    /// <remarks>Issue 17 (h122): a guest's kernel may keep its hypervisor's clock (<c>kvm-clock</c>) although the TSCs
    /// of its virtual CPUs agree; there the vDSO's <c>clock_gettime</c> costs ~27 ns per read and an ordered <c>rdtsc</c>
    /// about half of that. Whether the counters of all CPUs agree cannot be read from the guest, so it is an opt-in
    /// (<c>EIOSHARP_TRACE_CLOCK=tsc</c>): check a machine first with bench/tsc-order-check.sh (no reading of one CPU taken
    /// after one of another CPU may be smaller).</remarks>
    internal static bool ChoosesTsc(bool invariantTsc, string? clockSource, string? setting) =>
        invariantTsc && setting != "stopwatch" && (clockSource == "tsc" || setting == "tsc");

    [LibraryImport("libc")]
    private static partial nint mmap(nint addr, nuint length, int prot, int flags, int fd, nint offset);

    [LibraryImport("libc")]
    private static partial int mprotect(nint addr, nuint length, int prot);

    [LibraryImport("libc")]
    private static partial int munmap(nint addr, nuint length);
}
