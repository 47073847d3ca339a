using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace EioSharp.Tracing;

/// <summary>A fixed-size ring of trace events with one writer (a domain's thread, or writers serialised by a lock) and one
/// reader that may run concurrently on another thread.</summary>
/// <remarks>The writer never waits: when the ring is full it overwrites the oldest event (a flight recorder). A reader
/// that falls behind by more than the capacity loses the overwritten events and is told how many. A slot read while
/// the writer overwrites it is detected (the write count is re-read after the copy) and counted as lost.
/// <para>Slots hold no object references (an unmanaged 32-byte record), so writing one costs no GC write barrier and
/// keeps nothing alive; the few events that carry an object (a named fiber, a switch, a label, an exception) store it in
/// a parallel array. The slot arrays may come from <see cref="EioTrace"/>'s pool (the ring of a finished domain, once read): domains
/// that live for a few milliseconds then cost no 3 MB allocation each.</para></remarks>
internal sealed unsafe class TraceRing
{
    private readonly TraceSlots _slots;
    private readonly RawEvent* _events; // native memory owned by _slots (kept alive by this field)
    private readonly object?[] _data;
    private readonly int _mask;
    private long _written;
    private int _unstamped; // events after _written waiting for a time stamp (writer only)
    private readonly int _quarterShift; // log2 of a quarter of the capacity (the file writer is kicked at each quarter)
    private volatile bool _retired;

    /// <param name="domainId">The domain (-1: threads that are not domains).</param>
    /// <param name="name">The domain's name.</param>
    /// <param name="slots">The storage; its old contents are never read (only slots written since this ring was made are).</param>
    public TraceRing(int domainId, string name, TraceSlots slots)
    {
        _slots = slots;
        _events = slots.Events;
        _data = slots.Data;
        _mask = slots.Capacity - 1;
        _quarterShift = System.Numerics.BitOperations.Log2((uint)slots.Capacity) - 2;
        _halfShift = _quarterShift + 1;
        DomainId = domainId;
        Name = name;
    }

    public int DomainId { get; }

    public string Name { get; }

    public int Capacity => _mask + 1;

    /// <summary>The storage, for the pool once the ring is no longer written nor read.</summary>
    public TraceSlots Slots => _slots;

    /// <summary>True once the domain finished: nothing more will be written (set after its last write).</summary>
    public bool Retired
    {
        get => _retired;
        set => _retired = value;
    }

    private static int s_epochBases;
    private readonly int _epochBase = Interlocked.Add(ref s_epochBases, 1 << 20);
    private readonly int _halfShift; // log2 of half the capacity

    /// <summary>A number for the current half-ring period of this ring (different for every ring and every period, up to
    /// wrap-around of an int): a named fiber's identity is stored with its first event of each period only (see
    /// <c>EioTrace.CarriedData</c>), so every event of the newest full period and of the current one has its fiber's name
    /// stored before it in the ring.</summary>
    public int CarryEpoch
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => unchecked(_epochBase + (int)(_written >> _halfShift));
    }

    /// <summary>The time stamp of the last published event (the domain's last clock read for the trace), or 0 when none
    /// was published yet. Writer only (a suspension's dump record takes it instead of reading a clock).</summary>
    public long LastStamp
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get
        {
            long w = _written;
            return w == 0 ? 0 : _events[(int)((w - 1) & _mask)].Timestamp;
        }
    }

    /// <summary>The number of events ever written.</summary>
    public long Written => Volatile.Read(ref _written);

    /// <summary>Wake-up flows started by this ring's writer (the low bits of their ids; see <see cref="EioTrace"/>).</summary>
    public long Flows;

    /// <summary>The file writer of the session, if it has one: told each time a quarter of the ring has been written, so
    /// that it drains the ring before it wraps (a small ring stays in the CPU's cache; it must then be read often).</summary>
    public TraceFileWriter? Drainer { get; init; }

    /// <summary>The switch the last unnamed fiber creation that carried one carried, and the <see cref="Written"/> count
    /// up to which creations in that switch need not carry it again (half a ring later; writer only; see
    /// <see cref="EioTrace"/>'s <c>FiberCreated</c>).</summary>
    public object? LastOwner;

    /// <inheritdoc cref="LastOwner"/>
    public long LastOwnerUntil;

    /// <summary>The session this ring belongs to (rings are replaced when a new session starts).</summary>
    /// <remarks>A field, not a property: it is read by every recording hook (issue 17: no call even in unoptimised code).</remarks>
    public int Generation;

    /// <summary>At most this many events wait for a time stamp (<see cref="WriteUnstamped(long, long, long, object?)"/>); one more is stamped at once.</summary>
    public const int MaxUnstamped = 8;

    /// <summary>Appends an event; it also stamps the events that wait for a time (<see cref="WriteUnstamped(long, long, long, object?)"/>) with
    /// <paramref name="timestamp"/>, and publishes them all.</summary>
    /// <remarks>A fiber switch (a suspension or a fiber's end waiting for its time, then the next item's
    /// <see cref="TraceEventKind.FiberResumed"/>) takes one slot, not two, when the waiting event carries no object: its
    /// slot is rewritten as a <see cref="RawEvent.Switched"/> (or <see cref="RawEvent.SwitchedFinished"/>) record (resumed
    /// fiber, suspended or finished fiber, reason, argument) that readers (<see cref="ReadFrom"/>) give back as the two
    /// events. One 32-byte store per switch instead of two.
    /// <para>Inlined into each recording hook (issue 17: with the kind and reason constants there, the packing and the
    /// merge test fold away; the hooks themselves are cold calls for the kernel).</para></remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Write(long timestamp, TraceEventKind kind, TraceReason reason, long fiber, long other, long arg, object? data)
    {
        long start = _written;
        long i = start;
        int u = _unstamped;
        var events = _events;
        if (u != 0)
        {
            _unstamped = 0;
            ref var last = ref events[(int)((i + u - 1) & _mask)];
            if (kind == TraceEventKind.FiberResumed && RawEvent.SwitchKindFor(last.Head) is var switchKind && switchKind != 0)
            {
                if (u > 1)
                {
                    StampPending(i, u - 1, timestamp);
                }

                last.Timestamp = timestamp;
                last.Other = last.Head & RawEvent.FiberMask; // the suspended (or finished) fiber; Arg stays its event's
                last.Head = RawEvent.Pack(fiber, switchKind, last.Reason, data is not null);
                if (data is not null)
                {
                    _data[(int)((i + u - 1) & _mask)] = data;
                }

                Publish(start, i + u);
                return;
            }

            StampPending(i, u, timestamp);
            i += u;
        }

        int k = (int)(i & _mask);
        ref var slot = ref events[k];
        slot.Timestamp = timestamp;
        slot.Head = RawEvent.Pack(fiber, kind, reason, data is not null);
        slot.Other = other;
        slot.Arg = arg;
        if (data is not null)
        {
            _data[k] = data; // a stale object left in a slot without data is never read; it goes when overwritten
        }

        Publish(start, i + 1);
    }

    /// <summary>As <see cref="Write"/> for a <see cref="TraceEventKind.FiberResumed"/> event (the next item's start, once per
    /// fiber switch): the same records, written without calls (issue 17: the switch hooks' fixed cost).</summary>
    /// <param name="timestamp">The clock reading for this event and the ones waiting for a time.</param>
    /// <param name="fiber">The resumed fiber's id (0: a callback that is no fiber's).</param>
    /// <param name="data">The fiber's object when this event carries it, else null.</param>
    /// <remarks>Inlined into <c>EioTrace.ItemStarted</c>, its one caller (h83: a call, its prologue and the reload of the
    /// ring's fields were a fixed cost at every fiber switch once the valgrind counts were of optimised code).</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void WriteResumed(long timestamp, long fiber, object? data)
    {
        long start = _written;
        long i = start;
        int u = _unstamped;
        var events = _events;
        int mask = _mask;
        long dataFlag = data is null ? 0 : RawEvent.DataFlag;
        if (u != 0)
        {
            _unstamped = 0;
            for (int j = 0; j < u - 1; j++)
            {
                events[(int)((i + j) & mask)].Timestamp = timestamp;
            }

            int lk = (int)((i + u - 1) & mask);
            var last = events + lk;
            last->Timestamp = timestamp;
            long head = last->Head;
            long kindBits = head & (RawEvent.DataFlag | RawEvent.KindBits);
            // A suspension or a fiber's end without an object, then this resume: one switch record.
            long switchBits = kindBits == RawEvent.SuspendedBits ? RawEvent.SwitchedBits
                : kindBits == RawEvent.FinishedBits ? RawEvent.SwitchedFinishedBits : 0;
            if (switchBits != 0)
            {
                last->Other = head & RawEvent.FiberMask; // the suspended (or finished) fiber; Arg stays its event's
                last->Head = (fiber & RawEvent.FiberMask) | switchBits | (head & RawEvent.ReasonBits) | dataFlag;
                if (dataFlag != 0)
                {
                    _data[lk] = data;
                }

                i += u;
                goto Publish;
            }

            i += u;
        }

        int k = (int)(i & mask);
        var slot = events + k;
        slot->Timestamp = timestamp;
        slot->Head = (fiber & RawEvent.FiberMask) | RawEvent.ResumedBits | dataFlag;
        slot->Other = 0;
        slot->Arg = 0;
        if (dataFlag != 0)
        {
            _data[k] = data;
        }

        i++;
    Publish:
        Volatile.Write(ref _written, i);
        if (((start ^ i) >> _quarterShift) != 0)
        {
            KickDrainer();
        }
    }

    /// <summary>As <see cref="Write"/> for an event without an object that no switch record absorbs (a fiber's creation):
    /// stamps the events waiting for a time with <paramref name="timestamp"/>, writes the event, publishes them all, without
    /// calls (h94: the fork hook's fixed cost).</summary>
    /// <param name="timestamp">The clock reading for this event and the ones waiting for a time.</param>
    /// <param name="head">The packed fiber id, kind and reason (<see cref="RawEvent"/>'s <c>...Bits</c> constants).</param>
    /// <param name="other">The event's second fiber or id.</param>
    /// <param name="arg">The event's argument.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void WriteStampedNoData(long timestamp, long head, long other, long arg)
    {
        long start = _written;
        long i = start;
        int u = _unstamped;
        var events = _events;
        int mask = _mask;
        if (u != 0)
        {
            _unstamped = 0;
            for (int j = 0; j < u; j++)
            {
                events[(int)((i + j) & mask)].Timestamp = timestamp;
            }

            i += u;
        }

        var slot = events + (int)(i & mask);
        slot->Timestamp = timestamp;
        slot->Head = head;
        slot->Other = other;
        slot->Arg = arg;
        i++;
        Volatile.Write(ref _written, i);
        if (((start ^ i) >> _quarterShift) != 0)
        {
            KickDrainer();
        }
    }

    /// <summary>Appends an event without reading the clock: it is stamped with the time of the next event of this ring
    /// (<see cref="Write"/>, <see cref="WriteResumed"/>) or of <see cref="Flush"/>, and becomes visible to readers only then.</summary>
    /// <remarks>Used for suspensions, fibers' ends and same-domain wake-ups: the domain's next event (the next item's start,
    /// its idle, the parent fiber's next event after a child forked inline suspends) follows within the unwinding of the
    /// suspending callback, and one clock read then serves both (issue 17: the clock was most of the tracing cost). The
    /// head word comes packed (<see cref="RawEvent.Pack"/>, or the <c>...Bits</c> constants) and the slot is written
    /// without calls (the switch hooks' fixed cost).</remarks>
    /// <param name="head">The packed fiber id, kind and reason; the data flag is added here when <paramref name="data"/> is set.</param>
    /// <param name="other">The event's second fiber or id.</param>
    /// <param name="arg">The event's argument.</param>
    /// <param name="data">The event's object, or null.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] // into the suspension, wake-up and fiber-end hooks (h83: no call per switch)
    public void WriteUnstamped(long head, long other, long arg, object? data)
    {
        int u = _unstamped;
        if (u == MaxUnstamped)
        {
            Flush();
            u = 0;
        }

        int k = (int)((_written + u) & _mask);
        var slot = _events + k;
        slot->Other = other;
        slot->Arg = arg;
        if (data is null)
        {
            slot->Head = head;
        }
        else
        {
            slot->Head = head | RawEvent.DataFlag;
            _data[k] = data;
        }

        _unstamped = u + 1;
    }

    /// <summary>True when one more event can wait for a time stamp without a flush (writer only): the switch hooks' fast
    /// paths check it first, so that they make no call (h90).</summary>
    public bool HasUnstampedRoom
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _unstamped < MaxUnstamped;
    }

    /// <summary>As <see cref="WriteUnstamped(long, long, long, object?)"/> for an event without an object, when
    /// <see cref="HasUnstampedRoom"/> (the caller checked it): no call, no flush, no data flag.</summary>
    /// <param name="head">The packed fiber id, kind and reason (<see cref="RawEvent"/>'s <c>...Bits</c> constants).</param>
    /// <param name="other">The event's second fiber or id.</param>
    /// <param name="arg">The event's argument.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void WriteUnstampedNoData(long head, long other, long arg)
    {
        int u = _unstamped;
        var slot = _events + (int)((_written + u) & _mask);
        slot->Other = other;
        slot->Arg = arg;
        slot->Head = head;
        _unstamped = u + 1;
    }

    /// <summary>Makes the events up to <paramref name="end"/> visible; kicks the file writer when a quarter boundary is crossed.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Publish(long start, long end)
    {
        Volatile.Write(ref _written, end);
        if (((start ^ end) >> _quarterShift) != 0)
        {
            KickDrainer();
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void KickDrainer() => Drainer?.Kick();

    /// <summary>As <see cref="WriteUnstamped(long, long, long, object?)"/>, packing the head word from its parts.</summary>
    /// <param name="kind">The event's kind.</param>
    /// <param name="reason">The event's reason.</param>
    /// <param name="fiber">The event's fiber id.</param>
    /// <param name="other">The event's second fiber or id.</param>
    /// <param name="arg">The event's argument.</param>
    /// <param name="data">The event's object, or null.</param>
    public void WriteUnstamped(TraceEventKind kind, TraceReason reason, long fiber, long other, long arg, object? data) =>
        WriteUnstamped(RawEvent.Pack(fiber, kind, reason, false), other, arg, data);

    /// <summary>Stamps and publishes the events that wait for a time (by the ring's writer: the domain's thread, at its end).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public void Flush()
    {
        int u = _unstamped;
        if (u != 0)
        {
            long i = _written;
            StampPending(i, u, TraceClock.Now());
            _unstamped = 0;
            Publish(i, i + u);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void StampPending(long from, int count, long timestamp)
    {
        for (int j = 0; j < count; j++)
        {
            _events[(int)((from + j) & _mask)].Timestamp = timestamp;
        }
    }

    /// <summary>Copies the events written since <paramref name="cursor"/> into <paramref name="into"/> and advances the cursor.</summary>
    /// <returns>The number of slots lost (overwritten before they could be read; a switch record is one slot for two events).</returns>
    public long ReadFrom(ref long cursor, List<TraceEvent> into)
    {
        long end = Volatile.Read(ref _written);
        long lost = 0;
        int capacity = Capacity;
        if (end - cursor > capacity)
        {
            lost += end - capacity - cursor;
            cursor = end - capacity;
        }

        // First one TraceEvent per slot (a switch record as is), so that the slots overwritten during the copy are a
        // prefix of what was added; then the switch records are expanded.
        int start = into.Count;
        int switches = 0;
        for (long i = cursor; i < end; i++)
        {
            int k = (int)(i & _mask);
            var e = _events[k];
            var kind = e.Kind;
            into.Add(new TraceEvent(TraceClock.ToStopwatch(e.Timestamp), kind, e.Reason, DomainId, e.Fiber, e.Other, e.Arg, e.HasData ? _data[k] : null));
        }

        // Slots the writer may have overwritten while we copied them are dropped.
        long after = Volatile.Read(ref _written);
        // The writes from index `after` on may be under way (the next one, and the unstamped ones before it), unless the
        // domain has finished.
        long firstSafe = after - capacity + (_retired ? 0 : 1 + MaxUnstamped);
        if (firstSafe > cursor)
        {
            int bad = (int)Math.Min(firstSafe - cursor, end - cursor);
            into.RemoveRange(start, bad);
            lost += bad;
        }

        cursor = end;
        for (int j = start; j < into.Count; j++)
        {
            if (into[j].Kind is RawEvent.Switched or RawEvent.SwitchedFinished)
            {
                switches++;
            }
        }

        if (switches > 0)
        {
            ExpandSwitches(into, start, switches);
        }

        return lost;
    }

    /// <summary>Replaces each switch record in <paramref name="into"/> (from <paramref name="start"/>) by its suspension and resume, in place.</summary>
    private static void ExpandSwitches(List<TraceEvent> into, int start, int switches)
    {
        int oldCount = into.Count;
        CollectionsMarshal.SetCount(into, oldCount + switches);
        var span = CollectionsMarshal.AsSpan(into);
        int w = span.Length;
        for (int r = oldCount - 1; r >= start; r--)
        {
            var e = span[r];
            if (e.Kind is RawEvent.Switched or RawEvent.SwitchedFinished)
            {
                span[--w] = new TraceEvent(e.Timestamp, TraceEventKind.FiberResumed, TraceReason.None, e.DomainId, e.Fiber, 0, 0, e.Data);
                span[--w] = new TraceEvent(
                    e.Timestamp,
                    e.Kind == RawEvent.Switched ? TraceEventKind.FiberSuspended : TraceEventKind.FiberFinished,
                    e.Reason,
                    e.DomainId,
                    e.Other,
                    0,
                    e.Arg,
                    null);
            }
            else
            {
                span[--w] = e;
            }
        }
    }
}

/// <summary>A ring's storage: the events (no references) and the objects some of them carry; reused between domains.</summary>
/// <remarks>The events are in native memory, not in a managed array (issue 17): a 2 MB array per ring is a large object
/// the GC counts in its budgets, and the rings of a session (up to 14 of them with the pooled and retired ones) made the
/// GC of a fork-heavy program collect less often over more memory (fresh pages, page faults: ForkJoinYielding 1.4-1.9x
/// slower with tracing on, most of it in the GC and the kernel). Freed by the finalizer, once no ring uses the storage.</remarks>
internal sealed unsafe class TraceSlots
{
    public TraceSlots(int capacity)
    {
        int size = 1;
        while (size < capacity)
        {
            size <<= 1;
        }

        // 64-byte aligned: a 32-byte slot never straddles two cache lines. Not cleared: only slots written since a ring
        // was made on this storage are read.
        Events = (RawEvent*)NativeMemory.AlignedAlloc((nuint)size * (nuint)sizeof(RawEvent), 64);
        Capacity = size;
        Data = new object?[size];
    }

    ~TraceSlots() => NativeMemory.AlignedFree(Events);

    public RawEvent* Events { get; }

    public object?[] Data { get; }

    public int Capacity { get; }
}

/// <summary>One slot of a ring: a <see cref="TraceEvent"/> without its domain (the ring's), in 32 bytes (half a cache
/// line: the rings are written at every fiber switch, so their size is cache traffic): the fiber id (48 bits: ids come
/// from a process-wide counter), the kind, the reason and a flag for the slot's object share one word.</summary>
internal struct RawEvent
{
    private const int KindShift = 48;
    /// <summary>The position of the reason in <see cref="Head"/>.</summary>
    public const int ReasonShift = 56;

    /// <summary>The flag of <see cref="Head"/> for an event whose object is in the ring's parallel array.</summary>
    public const long DataFlag = 1L << 63;

    /// <summary>The bits of <see cref="Head"/> that hold the kind.</summary>
    public const long KindBits = 0xFFL << KindShift;

    /// <summary>The bits of <see cref="Head"/> that hold the reason.</summary>
    public const long ReasonBits = 0x7FL << ReasonShift;

    /// <summary>Kinds in place in <see cref="Head"/> (for the hot paths' packing without calls).</summary>
    public const long ResumedBits = (long)TraceEventKind.FiberResumed << KindShift;

    /// <inheritdoc cref="ResumedBits"/>
    public const long SuspendedBits = (long)TraceEventKind.FiberSuspended << KindShift;

    /// <inheritdoc cref="ResumedBits"/>
    public const long FinishedBits = (long)TraceEventKind.FiberFinished << KindShift;

    /// <inheritdoc cref="ResumedBits"/>
    public const long CreatedBits = (long)TraceEventKind.FiberCreated << KindShift;

    /// <inheritdoc cref="ResumedBits"/>
    public const long WokenBits = (long)TraceEventKind.FiberWoken << KindShift;

    /// <inheritdoc cref="ResumedBits"/>
    public const long SwitchedBits = (long)Switched << KindShift;

    /// <inheritdoc cref="ResumedBits"/>
    public const long SwitchedFinishedBits = (long)SwitchedFinished << KindShift;


    /// <summary>The bits of <see cref="Head"/> that hold the fiber id.</summary>
    public const long FiberMask = (1L << KindShift) - 1;

    /// <summary>The kind of a switch record (never seen outside the ring): a suspension without an object and the next
    /// item's resume, one slot. <see cref="Fiber"/> is the resumed fiber, <see cref="Other"/> the suspended one,
    /// <see cref="Reason"/> and <see cref="Arg"/> the suspension's, the slot's object (if any) the resumed fiber's.</summary>
    public const TraceEventKind Switched = (TraceEventKind)0x40;

    public long Timestamp;
    public long Head;
    public long Other;
    public long Arg;

    public readonly long Fiber => Head & FiberMask;

    public readonly TraceEventKind Kind => (TraceEventKind)(byte)(Head >> KindShift);

    public readonly TraceReason Reason => (TraceReason)(byte)((Head >> ReasonShift) & 0x7F);

    public readonly bool HasData => Head < 0;

    /// <summary>The kind of a switch record that absorbs a fiber's end without an object (a finished event with its
    /// outcome in <see cref="Arg"/>) and the next item's resume: as <see cref="Switched"/>, <see cref="Other"/> is the
    /// finished fiber.</summary>
    public const TraceEventKind SwitchedFinished = (TraceEventKind)0x41;

    /// <summary>The switch record that can absorb the event <paramref name="head"/> (a suspension or a fiber's end that
    /// carries no object), or 0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TraceEventKind SwitchKindFor(long head) =>
        (head & (DataFlag | (0xFFL << KindShift))) switch
        {
            (long)TraceEventKind.FiberSuspended << KindShift => Switched,
            (long)TraceEventKind.FiberFinished << KindShift => SwitchedFinished,
            _ => 0,
        };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long Pack(long fiber, TraceEventKind kind, TraceReason reason, bool hasData) =>
        (fiber & FiberMask) | ((long)kind << KindShift) | ((long)reason << ReasonShift) | (hasData ? DataFlag : 0);
}
