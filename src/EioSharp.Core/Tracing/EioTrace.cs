using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace EioSharp.Tracing;

/// <summary>Fiber tracing: records what every fiber of every domain does into per-domain rings of fixed-size events, and
/// optionally streams them to a Chrome Trace Event / Perfetto JSON file.</summary>
/// <remarks>
/// Eio: <c>Eio.Private.Trace</c> and <c>eio-trace</c> (<see cref="Log(string)"/> is <c>Trace.log</c>).
/// <para><b>Cost</b>: off by default; every hook in the scheduler is guarded by one read of a static field
/// (<see cref="IsEnabled"/>). When on, each event is one read of the CPU's time-stamp counter where it can be used (see <see cref="TraceClock"/>; else
/// <see cref="Stopwatch.GetTimestamp"/>) and one 32-byte store of plain data into the domain's ring (no allocation, no
/// lock on a domain thread); a suspension, and a wake-up of a fiber of the same domain, read no clock (they take the time
/// of the domain's next event, normally the next item's start: one clock read per fiber switch). A suspension on a waiter
/// also records, for dumps, what the fiber waits for and since when (the time of the domain's last stamped event: no clock
/// read, no <see cref="AsyncLocal{T}"/> read). A suspension and the next item's start share one slot.</para>
/// <para><b>Rings</b>: each domain writes only its own ring, so recording needs no synchronisation; events recorded by
/// threads that are not domains (system threads, .NET I/O completions) go to a shared ring under a lock. A full ring
/// overwrites its oldest events (the last <see cref="RingCapacity"/> events per domain are always available to
/// <see cref="Snapshot"/>). With a file, a writer thread drains the rings every <see cref="FlushInterval"/> and streams
/// them, so a long trace never needs more memory than the rings; events overwritten before the writer read them are
/// counted (<see cref="EventsLost"/>) and marked in the file.</para>
/// <para><b>Thread safety</b>: every member may be called from any thread. <see cref="Start(string?, int)"/> and
/// <see cref="Stop"/> are serialised.</para>
/// </remarks>
public static class EioTrace
{
    /// <summary>The one flag every hook tests (a plain static field: one load and one predictable branch when off).</summary>
    internal static bool On;

    private static readonly object s_lock = new();
    private static readonly object s_externalLock = new();
    private static readonly List<TraceRing> s_rings = [];
    private static TraceRing? s_external;
    private static int s_generation;
    private static int s_capacity = 1 << 16;
    private static bool s_sessionOn;
    private static int s_eventSourceListeners;
    private static long s_nextFlow;
    private static long s_nextId;
    private static TraceFileWriter? s_file;

    // Rings of finished domains are reused (a domain that lives a few milliseconds must not cost a 3 MB ring each):
    // with a file, once the writer has read them; without, the newest MaxRetiredKept stay readable by Snapshot and older
    // ones are recycled while recording goes on. All of it under s_lock, where rings are also read.
    private const int MaxPooled = 4;
    private const int MaxRetiredKept = 8;
    private static readonly Stack<TraceSlots> s_pool = new();
    private static readonly Queue<TraceRing> s_retired = new();

    /// <summary>True while events are being recorded (a session started by <see cref="Start(string?, int)"/>, or an
    /// <see cref="EioEventSource"/> listener such as <c>dotnet-trace</c>).</summary>
    public static bool IsEnabled => Volatile.Read(ref On);

    /// <summary>The capacity of each domain's ring (events) in the current or last session.</summary>
    public static int RingCapacity => s_capacity;

    /// <summary>How often the file writer drains the rings (default 100 ms).</summary>
    public static TimeSpan FlushInterval { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Events overwritten before the file writer could read them, in the current or last session.</summary>
    public static long EventsLost => s_file?.Lost ?? 0;

    /// <summary>The file the current session writes, or null.</summary>
    public static string? FilePath => s_file?.Path;

    /// <summary>Starts recording (a new session: earlier events are discarded).</summary>
    /// <param name="path">A file to stream the trace to as Chrome Trace Event JSON (open it in ui.perfetto.dev, chrome://tracing
    /// or <c>eiosharp-traceview</c>), or null to record only into the rings (read them with <see cref="Snapshot"/>).</param>
    /// <param name="ringCapacity">Events per domain ring (rounded up to a power of two; at least 1024). 32 bytes each plus a reference slot; rings of finished domains are reused.</param>
    /// <exception cref="InvalidOperationException">A session is already running.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="ringCapacity"/> is less than 1024.</exception>
    /// <exception cref="IOException">The file cannot be created.</exception>
    public static void Start(string? path = null, int ringCapacity = 1 << 16)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(ringCapacity, 1024);
        lock (s_lock)
        {
            if (s_sessionOn)
            {
                throw new InvalidOperationException("A trace session is already running; stop it first.");
            }

            s_file = path is null ? null : new TraceFileWriter(path);
            s_capacity = ringCapacity;
            NewGeneration(s_file);
            s_sessionOn = true;
            UpdateOn(); // suspensions record their fiber for dumps through the trace hook (Suspended(FiberFrame, WaiterNode))
            s_file?.StartThread();
        }
    }

    /// <summary>Stops the session: recording stops, and the file (if any) receives the remaining events and is closed.</summary>
    /// <returns>The path of the file written, or null.</returns>
    /// <remarks>The rings keep their events for <see cref="Snapshot"/> until the next <see cref="Start(string?, int)"/>. Idempotent.</remarks>
    public static string? Stop()
    {
        TraceFileWriter? file;
        lock (s_lock)
        {
            if (!s_sessionOn)
            {
                return null;
            }

            OpenRunsNotRecorded();
            s_sessionOn = false;
            UpdateOn();
            file = s_file;
            if (!On)
            {
                s_pool.Clear(); // no new ring will be needed until the next session
            }
        }

        file?.Finish();
        return file?.Path;
    }

    /// <summary>Records a label on the current fiber's track (no effect when tracing is off).</summary>
    /// <param name="label">The text.</param>
    /// <remarks>Eio: <c>Trace.log</c>. Safe from any thread; outside a domain the label goes to the "threads" track.</remarks>
    public static void Log(string label)
    {
        if (On)
        {
            Emit(TraceEventKind.Label, CurrentFiberId(), 0, 0, TraceReason.None, label ?? string.Empty);
        }
    }

    /// <summary>The events still in the rings of the current or last session, ordered by time.</summary>
    /// <returns>A copy; at most <see cref="RingCapacity"/> per domain (the newest).</returns>
    public static IReadOnlyList<TraceEvent> Snapshot()
    {
        var all = new List<TraceEvent>();
        TraceClock.Recalibrate();
        lock (s_lock)
        {
            foreach (var ring in s_rings)
            {
                long cursor = Math.Max(0, ring.Written - ring.Capacity);
                ring.ReadFrom(ref cursor, all);
            }
        }

        SortByTime(all);
        return all;
    }

    /// <summary>Writes the events still in the rings (see <see cref="Snapshot"/>) as Chrome Trace Event JSON.</summary>
    /// <param name="stream">The destination (left open).</param>
    public static void WriteChromeJson(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        using var writer = new ChromeTraceWriter(stream, leaveOpen: true);
        foreach (var (id, name) in DomainNames())
        {
            writer.NameDomain(id, name);
        }

        writer.Write(Snapshot());
    }

    /// <summary>The names of the domains seen in the current or last session (id → name; -1 is threads that are not domains).</summary>
    /// <returns>A new dictionary.</returns>
    public static IReadOnlyDictionary<int, string> DomainNames()
    {
        var d = new Dictionary<int, string>();
        foreach (var r in Rings())
        {
            d[r.DomainId] = r.Name;
        }

        return d;
    }

    internal static List<TraceRing> Rings()
    {
        lock (s_lock)
        {
            return new List<TraceRing>(s_rings);
        }
    }

    /// <summary>Sorts by time, keeping the recorded order of equal timestamps (a stable sort).</summary>
    internal static void SortByTime(List<TraceEvent> events)
    {
        var sorted = events.OrderBy(static e => e.Timestamp).ToList();
        events.Clear();
        events.AddRange(sorted);
    }

    internal static void AddEventSourceListener(bool add)
    {
        lock (s_lock)
        {
            int before = s_eventSourceListeners;
            s_eventSourceListeners = Math.Max(0, before + (add ? 1 : -1));
            if (before == 0 && s_eventSourceListeners > 0 && !s_sessionOn)
            {
                NewGeneration(null);
            }

            UpdateOn();
        }
    }

    private static void UpdateOn()
    {
        TraceClock.Recalibrate(); // the clock is set up (0.5 ms, once per process) here, not at a domain's first event
        Volatile.Write(ref On, s_sessionOn || s_eventSourceListeners > 0);
    }

    /// <param name="drainer">The new session's file writer, if any.</param>
    private static void NewGeneration(TraceFileWriter? drainer)
    {
        s_generation++;
        foreach (var r in s_rings)
        {
            if (r.Retired)
            {
                Recycle(r.Slots); // finished: no writer; readers read under s_lock, which we hold
            }
        }

        s_rings.Clear();
        s_retired.Clear();
        // The domains alive now may be in the middle of a work item (the fiber that called Start is): that run's resume
        // was not recorded, and the run may go on until after the session (a connection whose reads all find their data
        // at once never suspends: issue 15). Each such domain opens it at this time in its first ring (NewRing).
        long now = TraceClock.Now();
        foreach (var d in DomainRegistry.Snapshot)
        {
            d.TraceOpenGeneration = s_generation;
            d.TraceOpenSince = now;
        }

        lock (s_externalLock)
        {
            s_external = new TraceRing(-1, "threads", TakeSlots()) { Generation = s_generation, Drainer = drainer };
            s_rings.Add(s_external);
        }
    }

    /// <summary>Makes the session's ring of <paramref name="d"/> (at the domain's first event of the session).</summary>
    /// <param name="d">The domain.</param>
    /// <param name="inItem">False when the event is the start of a work item (<see cref="ItemStarted"/>): no run is in progress.</param>
    /// <remarks>A domain that was running a work item when the session began (the fiber that started it, or another
    /// domain's fiber in the middle of a run) had that run's resume before the session: without one, the run would show
    /// as no slice at all, and a fiber that does not suspend until the session stops (a KV connection whose reads all
    /// find their data at once, issue 15) would leave a trace without a slice. The ring then starts with a resume of the
    /// running fiber at the session's start, so that its run is a slice from there. Only for the domain's own thread, in
    /// its first item of the session (<see cref="Domain.TraceOpenGeneration"/>: domains alive at the start; a domain made
    /// since starts its runs with recorded events).</remarks>
    private static TraceRing NewRing(Domain d, bool inItem = true)
    {
        lock (s_lock)
        {
            var ring = new TraceRing(d.Id, d.Name, TakeSlots()) { Generation = s_generation, Drainer = s_sessionOn ? s_file : null };
            s_rings.Add(ring);
            if (d.TraceOpenGeneration == s_generation)
            {
                d.TraceOpenGeneration = 0;
                if (inItem && d.RunningFrame is { } running && ReferenceEquals(Domain.Current, d))
                {
                    OpenRun(ring, d, running);
                }
            }

            d.TraceRing = ring;
            return ring;
        }
    }

    /// <summary>Writes the resume of the run of <paramref name="running"/> that was in progress on <paramref name="d"/>
    /// when the session began (under s_lock, before the ring is published to the domain).</summary>
    private static void OpenRun(TraceRing ring, Domain d, FiberFrame running)
    {
        var f = running.Fiber;
        ring.Write(d.TraceOpenSince, TraceEventKind.FiberResumed, TraceReason.None, f.Id, 0, 0, f.Name is null ? null : CarriedData(ring, f));
    }

    /// <summary>At <see cref="Stop"/> (under s_lock, recording still on): a domain that recorded no event in the whole
    /// session while running a work item ran that item from before the start to now (a fiber that started the session
    /// and stops it from a system thread, which may turn recording off before the fiber's own suspension is recorded:
    /// issue 15). Its ring is made here with that run's resume, so that the run shows as a slice.</summary>
    /// <remarks>The domain's thread may be in a hook that decided to make its ring: it waits for s_lock, then makes
    /// another one (no second resume: the mark is cleared here); or it reads the ring published here and writes after
    /// the resume written here.</remarks>
    private static void OpenRunsNotRecorded()
    {
        foreach (var d in DomainRegistry.Snapshot)
        {
            if (d.TraceOpenGeneration == s_generation && d.RunningFrame is { } running)
            {
                d.TraceOpenGeneration = 0;
                var ring = new TraceRing(d.Id, d.Name, TakeSlots()) { Generation = s_generation, Drainer = s_file };
                s_rings.Add(ring);
                OpenRun(ring, d, running);
                Volatile.Write(ref d.TraceRing, ring);
            }
        }
    }

    /// <summary>A slot array for a new ring: a recycled one of the session's size, else a new one. Under s_lock.</summary>
    private static TraceSlots TakeSlots()
    {
        while (s_pool.TryPop(out var slots))
        {
            if (slots.Capacity >= s_capacity && slots.Capacity < 2 * s_capacity)
            {
                return slots;
            }
        }

        return new TraceSlots(s_capacity);
    }

    /// <summary>Gives a ring's slots back for reuse (under s_lock; the ring is neither written nor listed any more).</summary>
    /// <remarks>The old events stay in the arrays (clearing them per finished domain would cost more than it saves); the
    /// few objects they carry stay alive until overwritten or the pool is emptied at <see cref="Stop"/>.</remarks>
    private static void Recycle(TraceSlots slots)
    {
        if (s_pool.Count < MaxPooled)
        {
            s_pool.Push(slots);
        }
    }

    /// <summary>Called by a domain's thread when its loop ends: the domain's ring will not be written again.</summary>
    internal static void DomainFinished(Domain d)
    {
        var ring = d.TraceRing;
        if (ring is null)
        {
            return;
        }

        d.TraceRing = null;
        ring.Flush(); // on the domain's thread, its writer: a last suspension waiting for a time gets it now
        lock (s_lock)
        {
            ring.Retired = true;
            if (ring.Generation != s_generation)
            {
                Recycle(ring.Slots); // an earlier session's ring, no longer listed
                return;
            }

            if (s_file is not null && s_sessionOn)
            {
                return; // the file writer reads it to the end, then releases it (ReleaseDrained)
            }

            s_retired.Enqueue(ring);
            while (On && s_retired.Count > MaxRetiredKept)
            {
                var old = s_retired.Dequeue();
                s_rings.Remove(old);
                Recycle(old.Slots);
            }
        }
    }

    /// <summary>The lock under which rings are listed, read and recycled (the file writer drains under it).</summary>
    internal static object SyncRoot => s_lock;

    /// <summary>The session's rings; only under <see cref="SyncRoot"/>.</summary>
    internal static List<TraceRing> RingsLocked => s_rings;

    /// <summary>Drops a retired ring the file writer has read to its end and recycles its slots; under <see cref="SyncRoot"/>.</summary>
    internal static void ReleaseDrained(TraceRing ring)
    {
        if (ring.Generation == s_generation && s_rings.Remove(ring))
        {
            Recycle(ring.Slots);
        }
    }

    /// <summary>A process-unique id for a switch or cancel context, given on first use.</summary>
    internal static long NewId() => Interlocked.Increment(ref s_nextId);

    internal static long CurrentFiberId() => Domain.Current?.RunningFrame?.Fiber.Id ?? 0;

    internal static void Emit(TraceEventKind kind, long fiber, long other, long arg, TraceReason reason, object? data)
    {
        var d = Domain.Current;
        if (d is not null)
        {
            EmitOn(d, kind, fiber, other, arg, reason, data);
            return;
        }

        long ts = TraceClock.Now();
        lock (s_externalLock)
        {
            s_external?.Write(ts, kind, reason, fiber, other, arg, data);
        }

        if (s_eventSourceListeners > 0)
        {
            EioEventSource.Log.Write(kind, reason, -1, fiber, other, arg, data);
        }
    }

    /// <summary>As <see cref="Emit"/>, from the thread of <paramref name="d"/> (the caller knows it: no thread-static read).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] // into each hook (a cold call for the kernel)
    private static void EmitOn(Domain d, TraceEventKind kind, long fiber, long other, long arg, TraceReason reason, object? data)
    {
        long ts = TraceClock.Now();
        var ring = d.TraceRing;
        if (ring is null || ring.Generation != s_generation)
        {
            ring = NewRing(d);
        }

        ring.Write(ts, kind, reason, fiber, other, arg, data);
        if (s_eventSourceListeners > 0)
        {
            EioEventSource.Log.Write(kind, reason, d.Id, fiber, other, arg, data);
        }
    }

    /// <summary>What a fiber event carries for the EventSource and for the rare events (cancelled, outside a domain): the
    /// fiber's identity if it has a name, else nothing (an unnamed fiber's creation carries its switch, see
    /// <see cref="FiberCreated"/>). The switch hooks store a named fiber's identity once per half ring (<see cref="CarriedData"/>).</summary>
    /// <remarks>An object in a ring keeps it alive until overwritten, and storing it costs a GC write barrier: thousands
    /// of short unnamed fibers held by the rings made every garbage collection promote them (fork+join 5-8x slower with
    /// tracing on). Named fibers are few and long-lived.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] // into each hook (a cold call for the kernel)
    private static object? FiberData(FiberInfo? f) => f?.Name is null ? null : f;

    /// <summary>What a fiber event stored in <paramref name="ring"/> carries: a named fiber's identity with its first event
    /// of each half-ring period of the ring (<see cref="TraceRing.CarryEpoch"/>), else nothing.</summary>
    /// <remarks>Readers name a fiber from the first of its events that carries it and keep the name (the transcript, the
    /// JSON export), so one carrier per period is enough; storing the fiber at each of its events cost a reference store
    /// (a covariance check and a GC write barrier) and kept its suspension from sharing the next resume's slot
    /// (a switch record carries no suspended fiber's object): the main fiber of a ping-pong paid both at every switch.
    /// A reader of a whole ring sees the carriers of the newest full period and of the current one; events older than
    /// those may show their fiber unnamed (as a creation overwritten before the window already did).</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] // into each hook (a cold call for the kernel)
    private static object? CarriedData(TraceRing ring, FiberInfo? f)
    {
        if (f is not NamedFiber named)
        {
            return null;
        }

        int epoch = ring.CarryEpoch;
        if (named.TraceCarried == epoch)
        {
            return null;
        }

        named.TraceCarried = epoch;
        return f;
    }

    // Hooks called by the kernel, each behind `if (EioTrace.On)`.
    /// <summary>A work item starts on <paramref name="domain"/> (called by its scheduler, on its thread).</summary>
    /// <remarks>The usual case (a fiber's item, the session's ring, no EventSource listener, no fiber identity to store,
    /// the time-stamp counter) is written here without any call but the clock's, so the method saves and restores almost
    /// no registers (h90: its prologue and epilogue were a fixed cost at every fiber switch); the rest is
    /// <see cref="ItemStartedGeneral"/>.</remarks>
    [MethodImpl(MethodImplOptions.NoInlining)] // the off path stays one test and a cold call in the kernel
    [SkipLocalsInit] // the clock's timespec is written by clock_gettime before it is read: no zeroing (issue 17, h110)
    internal static unsafe void ItemStarted(Domain domain, FiberFrame? frame)
    {
        // The clock first: only the arguments live across its call, so few registers are saved.
        long ts = TraceClock.Now();
        var ring = domain.TraceRing;
        if (frame is not null && ring is not null && ring.Generation == s_generation && s_eventSourceListeners == 0)
        {
            var f = frame.Fiber;
            if (!f.IsNamed || Unsafe.As<NamedFiber>(f).TraceCarried == ring.CarryEpoch)
            {
                ring.WriteResumed(ts, f.Id, null);
                return;
            }
        }

        ItemStartedGeneral(domain, frame, ts);
    }

    /// <summary><see cref="ItemStarted"/>'s general path, with the clock reading <paramref name="ts"/>.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ItemStartedGeneral(Domain domain, FiberFrame? frame, long ts)
    {
        // Written without calls where it can be (issue 17: this runs at every fiber switch; the record is packed and
        // merged in TraceRing.WriteResumed).
        var ring = domain.TraceRing;
        if (ring is null || ring.Generation != s_generation)
        {
            ring = NewRing(domain, inItem: false);
        }

        long id = 0;
        object? data = null;
        if (frame is not null)
        {
            var f = frame.Fiber;
            id = f.Id;
            if (f.Name is not null)
            {
                data = CarriedData(ring, f);
            }
        }

        ring.WriteResumed(ts, id, data);
        if (s_eventSourceListeners > 0)
        {
            var f = frame?.Fiber;
            EioEventSource.Log.Write(TraceEventKind.FiberResumed, TraceReason.None, domain.Id, id, 0, 0, FiberData(f));
        }
    }

    /// <summary>A fiber suspends for <paramref name="reason"/> (a yield, an I/O wait outside the waiters).</summary>
    /// <param name="frame">The suspending code's frame (its callers took it from <see cref="FiberFrame.Require"/> just
    /// before), or null: the current frame.</param>
    /// <param name="reason">Why.</param>
    /// <param name="arg">A detail (a file descriptor), or 0.</param>
    /// <remarks>The ring is the fiber's domain's, found without the thread-static <see cref="Domain.Current"/> (h90: a TLS
    /// helper call per suspension) when that domain is running this fiber (<see cref="Domain.RunningFrame"/>, written only
    /// by the domain's own thread): fiber code runs only on its domain's thread. Otherwise (a frame awaited elsewhere,
    /// a misuse) the current domain is read as before.</remarks>
    [MethodImpl(MethodImplOptions.NoInlining)] // the off path stays one test and a cold call in the kernel
    internal static void Suspended(FiberFrame? frame, TraceReason reason, long arg)
    {
        // The usual case without a call (h90, as the waiter's Suspended). The domain is the frame's context's (an inner
        // frame's context is its fiber's domain's too), and the domain must be running this very frame (a yield's
        // continuation is posted with its frame, so a yield loop finds it there): one compare, where testing the running
        // frame's fiber cost a null test, the inner-frame type test and a load (issue 17, h110). It implies the old test
        // (same frame, same fiber); any other case (an inner frame's suspension resumed as another frame, a misuse) takes
        // the general path, which tests the fiber.
        if (frame is not null)
        {
            var d = frame.Cancel.Domain;
            var ring = d.TraceRing;
            if (ring is not null && ReferenceEquals(d.RunningFrame, frame) && ring.Generation == s_generation
                && ring.HasUnstampedRoom && s_eventSourceListeners == 0
                && frame.Fiber is var f && (!f.IsNamed || Unsafe.As<NamedFiber>(f).TraceCarried == ring.CarryEpoch))
            {
                ring.WriteUnstampedNoData((f.Id & RawEvent.FiberMask) | RawEvent.SuspendedBits | ((long)reason << RawEvent.ReasonShift), 0, arg);
                return;
            }
        }

        SuspendedGeneral(frame, reason, arg);
    }

    /// <summary>The general path of <see cref="Suspended(FiberFrame?, TraceReason, long)"/>.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void SuspendedGeneral(FiberFrame? frame, TraceReason reason, long arg)
    {
        var fiber = (frame ?? FiberFrame.Current)?.Fiber;
        var d = fiber?.Domain;
        if (d is null || !ReferenceEquals(d.RunningFrame?.Fiber, fiber))
        {
            d = Domain.Current;
        }

        if (d is null)
        {
            Emit(TraceEventKind.FiberSuspended, fiber?.Id ?? 0, 0, arg, reason, FiberData(fiber));
            return;
        }

        var ring = d.TraceRing;
        if (ring is null || ring.Generation != s_generation)
        {
            ring = NewRing(d);
        }

        long id = 0;
        object? data = null;
        if (fiber is not null)
        {
            id = fiber.Id;
            if (fiber.Name is not null)
            {
                data = CarriedData(ring, fiber);
            }
        }

        ring.WriteUnstamped((id & RawEvent.FiberMask) | RawEvent.SuspendedBits | ((long)reason << RawEvent.ReasonShift), 0, arg, data);
        if (s_eventSourceListeners > 0)
        {
            EioEventSource.Log.Write(TraceEventKind.FiberSuspended, reason, d.Id, id, 0, arg, FiberData(fiber));
        }
    }

    /// <summary>A fiber suspends on the waiter <paramref name="w"/> (called by the waiter, in its <c>OnCompleted</c>): records
    /// the suspension (reason and argument from the waiter) and, for dumps, what the fiber is suspended on and since when
    /// (<see cref="FiberInfo.SuspendedAt"/>), so that tracing needs neither the watchdog's frame lookup (an
    /// <see cref="AsyncLocal{T}"/> read) nor a clock read per suspension.</summary>
    /// <param name="frame">The suspending code's frame or fiber (null outside fiber code): always the code running on the
    /// calling thread (the callers take it from <see cref="FiberFrame.CurrentFiber"/> or <see cref="FiberFrame.Current"/>,
    /// which read it from the thread's synchronization context, installed only by the fiber's domain on its own thread).</param>
    /// <param name="w">The waiter.</param>
    /// <remarks>The ring is therefore the fiber's domain's: no read of the thread-static <see cref="Domain.Current"/>
    /// (h90: a TLS helper call per suspension); only code outside fibers (no frame) reads it.</remarks>
    [MethodImpl(MethodImplOptions.NoInlining)] // the off path stays one test and a cold call in the kernel
    internal static void Suspended(FiberFrame? frame, WaiterNode w)
    {
        // The usual case without a call (h90, as ItemStarted): a fiber, the session's ring with room for one more event
        // waiting for its time, no identity to store, no EventSource listener.
        if (frame is not null)
        {
            var f = frame.Fiber;
            var ring = f.Domain.TraceRing;
            if (ring is not null && ring.Generation == s_generation && ring.HasUnstampedRoom && s_eventSourceListeners == 0
                && (!f.IsNamed || Unsafe.As<NamedFiber>(f).TraceCarried == ring.CarryEpoch) && ring.LastStamp is var since && since > 0)
            {
                ring.WriteUnstampedNoData(
                    (f.Id & RawEvent.FiberMask) | RawEvent.SuspendedBits | ((long)w.TraceReason << RawEvent.ReasonShift), 0, w.TraceArg);
                // The dumps' record (as FiberInfo.SuspendedAt), last: the reference store's write barrier is then the
                // method's only call, at its end.
                f.SuspendedSince = ~since;
                f.SuspendedOn = w;
                return;
            }
        }

        SuspendedGeneral(frame, w);
    }

    /// <summary>The general path of <see cref="Suspended(FiberFrame?, WaiterNode)"/>.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void SuspendedGeneral(FiberFrame? frame, WaiterNode w)
    {
        var fiber = frame?.Fiber;
        var d = fiber is not null ? fiber.Domain : Domain.Current;
        Debug.Assert(fiber is null || ReferenceEquals(d, Domain.Current), "fiber code suspends on its own domain's thread");
        if (d is null)
        {
            fiber?.Suspended(w);
            Emit(TraceEventKind.FiberSuspended, fiber?.Id ?? 0, 0, w.TraceArg, w.TraceReason, FiberData(fiber));
            return;
        }

        var ring = d.TraceRing;
        if (ring is null || ring.Generation != s_generation)
        {
            ring = NewRing(d);
        }

        long id = 0;
        object? data = null;
        if (fiber is not null)
        {
            fiber.SuspendedAt(w, ring.LastStamp);
            id = fiber.Id;
            if (fiber.Name is not null)
            {
                data = CarriedData(ring, fiber);
            }
        }

        ring.WriteUnstamped((id & RawEvent.FiberMask) | RawEvent.SuspendedBits | ((long)w.TraceReason << RawEvent.ReasonShift), 0, w.TraceArg, data);
        if (s_eventSourceListeners > 0)
        {
            EioEventSource.Log.Write(TraceEventKind.FiberSuspended, w.TraceReason, d.Id, id, 0, w.TraceArg, FiberData(fiber));
        }
    }

    /// <summary>The fiber of <paramref name="frame"/> is woken by the code running on the calling thread (any thread).</summary>
    /// <remarks>Reads the thread-static <see cref="Domain.Current"/>: a waker that already knows it runs on the woken
    /// fiber's domain calls <see cref="WokenHere"/> (see <c>Domain.EnqueueWoken</c>).</remarks>
    [MethodImpl(MethodImplOptions.NoInlining)] // the off path stays one test and a cold call in the kernel
    internal static void Woken(FiberFrame? frame)
    {
        if (frame is null)
        {
            return;
        }

        // Flow ids are unique per domain without a shared counter (a cross-domain wake-up must not contend on one):
        // (domain id + 1) << 40 | the ring's own count; threads that are not domains share s_nextFlow (below 2^40).
        var d = Domain.Current;
        if (d is null)
        {
            Emit(TraceEventKind.FiberWoken, frame.Fiber.Id, 0, Interlocked.Increment(ref s_nextFlow), TraceReason.None, null);
            return;
        }

        WokenOn(d, frame);
    }

    /// <summary>As <see cref="Woken"/>, called on the thread of <paramref name="d"/> (the caller checked it: the domain's
    /// enqueue reads the thread-static current domain once for both, h90), which will run the woken fiber.</summary>
    /// <param name="d">The current domain.</param>
    /// <param name="frame">The woken code's frame.</param>
    [MethodImpl(MethodImplOptions.NoInlining)] // the off path stays one test and a cold call in the kernel
    internal static void WokenHere(Domain d, FiberFrame frame)
    {
        var ring = d.TraceRing;
        var woken = frame.Fiber;
        if (ring is null || ring.Generation != s_generation || !ReferenceEquals(woken.Domain, d) || !ring.HasUnstampedRoom
            || s_eventSourceListeners > 0)
        {
            WokenOn(d, frame); // a new ring, a fiber of another domain, a flush, or an EventSource listener: the general path
            return;
        }

        // Woken on this domain: it cannot run before the waker's run ends, so the wake-up takes the time of this
        // domain's next event (no clock read; the flow leaves from the waker's run either way). No call (h90).
        long flow = ((long)(d.Id + 1) << 40) | ++ring.Flows;
        long waker = d.RunningFrame is { } running ? running.Fiber.Id : 0;
        ring.WriteUnstampedNoData((woken.Id & RawEvent.FiberMask) | RawEvent.WokenBits, waker, flow);
    }

    /// <summary><see cref="Woken"/> once the current domain <paramref name="d"/> is known.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void WokenOn(Domain d, FiberFrame frame)
    {
        var ring = d.TraceRing;
        long flow = ring is not null ? ((long)(d.Id + 1) << 40) | ++ring.Flows : Interlocked.Increment(ref s_nextFlow);
        long waker = d.RunningFrame is { } running ? running.Fiber.Id : 0;
        var woken = frame.Fiber;
        long id = woken.Id;
        if (ring is not null && ring.Generation == s_generation && ReferenceEquals(woken.Domain, d))
        {
            ring.WriteUnstamped((id & RawEvent.FiberMask) | RawEvent.WokenBits, waker, flow, null);
            if (s_eventSourceListeners > 0)
            {
                EioEventSource.Log.Write(TraceEventKind.FiberWoken, TraceReason.None, d.Id, id, waker, flow, null);
            }

            return;
        }

        EmitOn(d, TraceEventKind.FiberWoken, id, waker, flow, TraceReason.None, null);
    }

    [MethodImpl(MethodImplOptions.NoInlining)] // the off path stays one test and a cold call in the kernel
    internal static void Cancelled(FiberFrame? frame) =>
        Emit(TraceEventKind.FiberCancelled, frame?.Fiber.Id ?? 0, 0, 0, TraceReason.None, FiberData(frame?.Fiber));

    /// <remarks>An unnamed fiber's creation carries its switch (for the switch path of the export) only when the ring's
    /// previous one carried another switch, or carried it more than half a ring ago: the fibers forked in a loop share
    /// one switch, and storing it at each fork (an object reference into a large array, a GC write barrier and a card the
    /// next collection scans) was a measurable part of the fork's cost. Readers map the switch id (<see cref="TraceEvent.Arg"/>)
    /// to the switch seen last with it (<see cref="ChromeTraceWriter"/>); a reader of the newest half of a ring always
    /// finds it there.</remarks>
    [MethodImpl(MethodImplOptions.NoInlining)] // the off path stays one test and a cold call in the kernel
    // Created and finished: on the fiber's own domain (a fork runs on the switch's domain, which the kernel checks; a fiber's
    // end runs there too), so its ring is written without reading the thread-static current domain (a TLS helper call).
    internal static unsafe void FiberCreated(FiberFrame child, FiberFrame? parent)
    {
        // The clock first, as in ItemStarted: only the arguments live across its call. The creation keeps its own time
        // (not the next event's): the child's first run, inline in its parent's, starts here.
        long ts = TraceClock.Now();
        // The usual case without a call (h94, as the switch hooks): an unnamed fiber whose switch is the one the ring's
        // last carrier carried, recently, the session's ring, no EventSource listener.
        var f = child.Fiber;
        var owner = f.Owner;
        var ring = f.Domain.TraceRing;
        if (ring is not null && ring.Generation == s_generation && s_eventSourceListeners == 0 && !f.IsNamed && owner is not null
            && ReferenceEquals(ring.LastOwner, owner) && ring.Written <= ring.LastOwnerUntil)
        {
            ring.WriteStampedNoData(
                ts, (f.Id & RawEvent.FiberMask) | RawEvent.CreatedBits, parent is null ? 0 : parent.Fiber.Id, owner.TraceId);
            return;
        }

        FiberCreatedGeneral(child, parent, ts);
    }

    /// <summary>The general path of <see cref="FiberCreated"/>, with the clock reading <paramref name="ts"/>.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void FiberCreatedGeneral(FiberFrame child, FiberFrame? parent, long ts)
    {
        var f = child.Fiber;
        var owner = f.Owner;
        var d = f.Domain;
        var ring = d.TraceRing;
        if (ring is null || ring.Generation != s_generation)
        {
            ring = NewRing(d);
        }

        object? data = f;
        if (f.Name is null)
        {
            data = null;
            if (owner is not null && (!ReferenceEquals(ring.LastOwner, owner) || ring.Written > ring.LastOwnerUntil))
            {
                data = owner;
                ring.LastOwner = owner;
                ring.LastOwnerUntil = ring.Written + ring.Capacity / 2;
            }
        }

        long parentId = parent?.Fiber.Id ?? 0;
        long switchId = owner?.TraceId ?? 0;
        ring.Write(ts, TraceEventKind.FiberCreated, TraceReason.None, f.Id, parentId, switchId, data);
        if (s_eventSourceListeners > 0)
        {
            EioEventSource.Log.Write(TraceEventKind.FiberCreated, TraceReason.None, d.Id, f.Id, parentId, switchId, f.Name is null ? owner : f);
        }
    }

    /// <remarks>A fiber's end takes the time of its domain's next event (no clock read), as a suspension does: the end
    /// of a run is followed by the next item's start within the same round, and an end without an object then shares
    /// that start's slot (a <see cref="RawEvent.SwitchedFinished"/> record).</remarks>
    [MethodImpl(MethodImplOptions.NoInlining)] // the off path stays one test and a cold call in the kernel
    internal static void FiberFinished(FiberFrame frame, Exception? error)
    {
        // The usual case without a call (h94, as the switch hooks): an unnamed fiber that returned, the session's ring with
        // room for one more event waiting for its time, no EventSource listener.
        var f = frame.Fiber;
        var ring = f.Domain.TraceRing;
        if (error is null && ring is not null && ring.Generation == s_generation && ring.HasUnstampedRoom
            && s_eventSourceListeners == 0 && !f.IsNamed)
        {
            ring.WriteUnstampedNoData((f.Id & RawEvent.FiberMask) | RawEvent.FinishedBits, 0, (long)FiberOutcome.Ok);
            return;
        }

        FiberFinishedGeneral(frame, error);
    }

    /// <summary>The general path of <see cref="FiberFinished"/>.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void FiberFinishedGeneral(FiberFrame frame, Exception? error)
    {
        var f = frame.Fiber;
        var d = f.Domain;
        var ring = d.TraceRing;
        if (ring is null || ring.Generation != s_generation)
        {
            ring = NewRing(d);
        }

        long outcome = (long)(error is null ? FiberOutcome.Ok : error is CancelledException ? FiberOutcome.Cancelled : FiberOutcome.Failed);
        long id = f.Id;
        object? data = error;
        if (data is null && f.Name is not null)
        {
            data = CarriedData(ring, f);
        }

        ring.WriteUnstamped((id & RawEvent.FiberMask) | RawEvent.FinishedBits, 0, outcome, data);
        if (s_eventSourceListeners > 0)
        {
            EioEventSource.Log.Write(TraceEventKind.FiberFinished, TraceReason.None, d.Id, f.Id, 0, outcome, (object?)error ?? FiberData(f));
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)] // the off path stays one test and a cold call in the kernel
    internal static void SwitchOpened(Switch sw, FiberFrame frame) =>
        Emit(TraceEventKind.SwitchOpened, frame.Fiber.Id, sw.Parent?.TraceId ?? 0, sw.TraceId, TraceReason.None, sw);

    [MethodImpl(MethodImplOptions.NoInlining)] // the off path stays one test and a cold call in the kernel
    internal static void SwitchClosed(Switch sw, FiberFrame frame, Exception? error) =>
        Emit(TraceEventKind.SwitchClosed, frame.Fiber.Id, 0, sw.TraceId, TraceReason.None, (object?)error ?? sw);

    [MethodImpl(MethodImplOptions.NoInlining)] // the off path stays one test and a cold call in the kernel
    internal static void CancelCreated(CancelContext c, CancelContext? parent) =>
        Emit(TraceEventKind.CancelCreated, CurrentFiberId(), parent?.TraceId ?? 0, c.TraceId, TraceReason.None, null);

    [MethodImpl(MethodImplOptions.NoInlining)] // the off path stays one test and a cold call in the kernel
    internal static void CancelCancelled(CancelContext c, Exception reason) =>
        Emit(TraceEventKind.CancelCancelled, CurrentFiberId(), 0, c.TraceId, TraceReason.None, reason);

    /// <summary>Records the start of an offloaded call on the calling (system) thread; returns its id for <see cref="SysthreadFinished"/>.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)] // the off path stays one test and a cold call in the kernel
    internal static long SysthreadStarted(long fiber)
    {
        long id = NewId();
        Emit(TraceEventKind.SysthreadStarted, fiber, Environment.CurrentManagedThreadId, id, TraceReason.Systhread, null);
        return id;
    }

    /// <summary>Records the end of the offloaded call <paramref name="id"/> (before the fiber is woken).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)] // the off path stays one test and a cold call in the kernel
    internal static void SysthreadFinished(long fiber, long id, Exception? error) =>
        Emit(TraceEventKind.SysthreadFinished, fiber, Environment.CurrentManagedThreadId, id, TraceReason.Systhread, error);

    [MethodImpl(MethodImplOptions.NoInlining)] // the off path stays one test and a cold call in the kernel
    internal static void DomainIdle() => Emit(TraceEventKind.DomainIdle, 0, 0, 0, TraceReason.None, null);

    [MethodImpl(MethodImplOptions.NoInlining)] // the off path stays one test and a cold call in the kernel
    internal static void DomainBusy() => Emit(TraceEventKind.DomainBusy, 0, 0, 0, TraceReason.None, null);
}
