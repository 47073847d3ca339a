using System.Buffers;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using System.Threading.Tasks.Sources;

namespace EioSharp.Backends.Uring;

/// <summary>
/// One io_uring operation of one fiber: its SQE is queued on the calling domain's ring and the fiber resumes (on the same
/// domain, through its run queue) when the operation's own completion arrives.
/// </summary>
/// <remarks>
/// Cancellation (S13/S14, Eio_linux's semantics): cancelling the fiber queues an IORING_OP_ASYNC_CANCEL for the operation but
/// does not resume the fiber; the fiber resumes only when the operation's completion arrives, so the kernel is done with the
/// buffer (and any accepted fd is known) before the caller can reuse or free it. If the operation completed anyway (it won
/// the race), its result is returned and the cancellation is seen at the fiber's next suspension point, so no completion is
/// lost; if it was cancelled (-ECANCELED, or -EINTR), <see cref="CancelledException"/> is thrown.
/// Used on its domain's thread only, for a single await. Pooled per ring (no allocation per operation in steady state):
/// <see cref="GetResult"/> returns the operation to its ring's pool once the result is taken, and the version in the
/// <see cref="ValueTask{TResult}"/> token makes a stale second await fail instead of reading another operation's result.
/// </remarks>
internal sealed class UringOp : WaiterNode, IValueTaskSource<int>, IValueTaskSource<long>
{
    private static readonly Action<object?> s_done = static _ => { };

    private readonly UringPoller _ring;
    private readonly Domain _domain;
    private MemoryHandle _pin;
    private ulong _tag;
    private int _result;
    private bool _completed;
    private bool _linked; // a WRITE linked to an FSYNC (StartWriteThenSync): two SQEs, two completions
    private bool _firstDone; // linked: the write's completion has arrived
    private bool _secondDone; // linked: the fsync's completion has arrived
    private ulong _tag2;
    private int _result2;
    private CancelledException? _cancelled;
    private Action<object?>? _continuation;
    private object? _continuationState;
    private FiberFrame? _frame; // the awaiting fiber (its frame while a watchdog runs), installed by the run loop to run the continuation (as Waiter)
    private short _version;

    private static long s_created;

    /// <summary>Operations allocated so far in the process (tests: the pool makes this stop growing in steady state).</summary>
    internal static long Created => Interlocked.Read(ref s_created);

    private UringOp(UringPoller ring, Domain domain)
    {
        Interlocked.Increment(ref s_created);
        _ring = ring;
        _domain = domain;
    }

    /// <summary>The ring of the calling domain; throws when the domain does not run the io_uring backend.</summary>
    public static UringPoller CurrentRing() =>
        Domain.Current?.Poller as UringPoller
        ?? throw new InvalidOperationException("An io_uring-backend socket can only be used on a domain of the io_uring backend.");

    /// <summary>Starts an operation (queues its SQE); <paramref name="pin"/> stays pinned until the completion arrives.</summary>
    /// <remarks><paramref name="sqeFlags"/>: IOSQE_* flags of the SQE (the files' IOSQE_ASYNC switch, <see cref="EioBackendOptions.UringFileForceAsync"/>).</remarks>
    public static unsafe UringOp Start(FiberFrame frame, byte opcode, int fd, MemoryHandle pin, ulong addr, uint len, uint opFlags, ulong off = 0, byte sqeFlags = 0, ushort ioPrio = 0)
    {
        // A loop of operations (a write sent in parts, an accept retried) starts each one here: an operation started by a
        // fiber that is already cancelled would never be cancelled (the cancellation has been delivered), so refuse it.
        if (frame.Cancel.IsCancelled)
        {
            pin.Dispose();
            throw frame.Cancel.MakeCancelled();
        }

        var ring = CurrentRing();
        var op = ring.RentOp() ?? new UringOp(ring, ring.Domain!);
        op._pin = pin;
        op.TraceReason = opcode is Sys.IORING_OP_SEND or Sys.IORING_OP_SENDMSG or Sys.IORING_OP_WRITE or Sys.IORING_OP_FSYNC ? Tracing.TraceReason.IoWrite : Tracing.TraceReason.IoRead;
        op.TraceArg = fd;
        op._tag = ring.Track(op);
        var sqe = ring.NextSqe(opcode, fd, op._tag);
        sqe->Addr = addr;
        sqe->Len = len;
        sqe->OpFlags = opFlags;
        sqe->Off = off;
        sqe->Flags |= sqeFlags;
        sqe->IoPrio = ioPrio;
        frame.Cancel.AddWaiter(op);
        return op;
    }

    /// <summary>
    /// Starts an IORING_OP_WRITE of <paramref name="len"/> bytes at <paramref name="off"/> linked (IOSQE_IO_LINK) to an
    /// IORING_OP_FSYNC of the same fd with <paramref name="fsyncFlags"/>: the kernel starts the fsync only once the write
    /// has written everything (a failed or short write fails the link: the fsync completes with -ECANCELED), and both SQEs
    /// go in one submission. The fiber resumes when both completions have arrived (<see cref="PairTask"/>);
    /// <paramref name="pin"/> stays pinned until then.
    /// (Not IOSQE_CQE_SKIP_SUCCESS on the write: tried, it saved no context switch in the file-sync benchmark, and with it
    /// a failed write also suppresses the fsync's completion, REQ_F_SKIP_LINK_CQES, which needs its own bookkeeping.)
    /// </summary>
    public static unsafe UringOp StartWriteThenSync(FiberFrame frame, int fd, MemoryHandle pin, ulong addr, uint len, ulong off, uint fsyncFlags, byte sqeFlags = 0)
    {
        if (frame.Cancel.IsCancelled)
        {
            pin.Dispose();
            throw frame.Cancel.MakeCancelled();
        }

        var ring = CurrentRing();
        var op = ring.RentOp() ?? new UringOp(ring, ring.Domain!);
        op._pin = pin;
        op.TraceReason = Tracing.TraceReason.IoWrite;
        op.TraceArg = fd;
        op._linked = true;
        op._tag = ring.Track(op);
        op._tag2 = ring.Track(op);
        ring.ReserveSqes(2); // both in the same submission, else the link would be cut
        var write = ring.NextSqe(Sys.IORING_OP_WRITE, fd, op._tag);
        write->Flags = (byte)(Sys.IOSQE_IO_LINK | sqeFlags);
        write->Addr = addr;
        write->Len = len;
        write->Off = off;
        var sync = ring.NextSqe(Sys.IORING_OP_FSYNC, fd, op._tag2);
        sync->OpFlags = fsyncFlags;
        sync->Flags |= sqeFlags;
        frame.Cancel.AddWaiter(op);
        return op;
    }

    public ValueTask<int> Task => new(this, _version);

    /// <summary>The token of <see cref="Task"/> (for a wrapper that awaits this operation as its own source).</summary>
    internal short Version => _version;

    /// <summary>The awaitable of an operation started by <see cref="StartWriteThenSync"/>: the write's result in the low 32
    /// bits, the fsync's in the high 32 bits (each >= 0 or -errno).</summary>
    public ValueTask<long> PairTask => new(this, _version);

    private void CheckToken(short token)
    {
        if (token != _version)
        {
            throw new InvalidOperationException("This io_uring operation was already awaited (a ValueTask may be awaited once).");
        }
    }

    /// <summary>Called by the cancel context (on the domain): asks the kernel to cancel; the completion still decides.</summary>
    internal override bool TryCancel(CancelledException error)
    {
        if (_completed || _cancelled is not null)
        {
            return false;
        }

        _cancelled = error;
        if (!_linked)
        {
            _ring.CancelOp(_tag);
            return true;
        }

        // Linked: cancelling the write (if still pending) fails the link, so the fsync completes with -ECANCELED; an fsync
        // already started by an io_uring worker may not stop (ASYNC_CANCEL then fails): its completion still decides. A
        // tag is cancelled only while its completion has not arrived (until then its ring slot is not reused).
        if (!_firstDone)
        {
            _ring.CancelOp(_tag);
        }

        if (!_secondDone)
        {
            _ring.CancelOp(_tag2);
        }

        return true;
    }

    /// <summary>A completion of the operation tagged <paramref name="tag"/> (on the domain's thread, from the ring's reap).</summary>
    internal void Complete(ulong tag, int res)
    {
        if (_linked)
        {
            if (tag == _tag2 && !_secondDone)
            {
                _secondDone = true;
                _result2 = res;
            }
            else
            {
                _firstDone = true;
                _result = res;
            }

            if (!(_firstDone && _secondDone))
            {
                return;
            }
        }
        else
        {
            _result = res;
        }

        _completed = true;
        _pin.Dispose();

        var c = _continuation;
        _continuation = s_done;
        if (c is not null)
        {
            if (Tracing.EioTrace.On)
            {
                Tracing.EioTrace.Woken(_frame);
            }

            _domain.Enqueue(c, _continuationState, _frame);
        }
    }

    /// <summary>The raw result (>= 0, or -errno) once completed; throws <see cref="CancelledException"/> if the operation was cancelled.</summary>
    public int GetResult(short token)
    {
        var cancelled = Take(token, out int result, out _);
        if (cancelled is not null && result is -Sys.ECANCELED or -Sys.EINTR)
        {
            ExceptionDispatchInfo.Throw(cancelled);
        }

        return result;
    }

    /// <summary>Both results of a linked write+fsync (see <see cref="PairTask"/>); throws <see cref="CancelledException"/>
    /// if the fiber was cancelled and the kernel cancelled the write, or the fsync after a write that did not fail (the
    /// data may then be written and not synced). A write that failed with an error of its own returns that error.</summary>
    long IValueTaskSource<long>.GetResult(short token)
    {
        var cancelled = Take(token, out int write, out int sync);
        if (cancelled is not null && (write is -Sys.ECANCELED or -Sys.EINTR || (write >= 0 && sync is -Sys.ECANCELED or -Sys.EINTR)))
        {
            ExceptionDispatchInfo.Throw(cancelled);
        }

        return (uint)write | ((long)sync << 32);
    }

    // The awaiter's side of both GetResult forms: checks the token, ends the wait, takes the results and recycles the
    // operation; returns the cancellation that was asked for, if any (the caller decides whether the results show it).
    private CancelledException? Take(short token, out int result, out int result2)
    {
        CheckToken(token);
        Context?.RemoveWaiter(this);
        _frame?.Fiber.Resumed(this);
        _frame = null;
        if (!_completed)
        {
            throw new InvalidOperationException("The operation has not completed.");
        }

        var cancelled = _cancelled;
        result = _result;
        result2 = _result2;
        Recycle();
        return cancelled;
    }

    ValueTaskSourceStatus IValueTaskSource<long>.GetStatus(short token) => GetStatus(token);

    void IValueTaskSource<long>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        OnCompleted(continuation, state, token, flags);

    // The completion has arrived and its result is taken: nothing (ring slot, cancel context, continuation) refers to this
    // operation any more, so it can serve the next one.
    private void Recycle()
    {
        _version++;
        _completed = false;
        _cancelled = null;
        _result = 0;
        _linked = false;
        _firstDone = false;
        _secondDone = false;
        _tag2 = 0;
        _result2 = 0;
        _continuation = null;
        _continuationState = null;
        _pin = default;
        _tag = 0;
        _ring.ReturnOp(this);
    }

    public ValueTaskSourceStatus GetStatus(short token)
    {
        CheckToken(token);
        return _completed ? ValueTaskSourceStatus.Succeeded : ValueTaskSourceStatus.Pending;
    }

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
    {
        CheckToken(token);
        _continuationState = state;
        if (ReferenceEquals(_continuation, s_done))
        {
            _domain.Enqueue(continuation, state, FiberFrame.Current);
            return;
        }

        if (Tracing.EioTrace.On)
        {
            // Visible to traces and dumps as "suspended on io", as the other backends' waits (one hook records both).
            _frame = FiberFrame.Current;
            Tracing.EioTrace.Suspended(_frame, this);
        }
        else if (Volatile.Read(ref Domain.WatchdogsRunning) != 0)
        {
            // Visible to dumps (DEBUG FIBERS, the watchdog).
            _frame = FiberFrame.Current;
            _frame?.Fiber.Suspended(this);
        }
        else
        {
            // The run loop installs this fiber to run the continuation (as Waiter does), so that the awaiting code may be
            // fiber code itself (a transport's read source, BufferedReader's fill) rather than an async method whose Task
            // posts back to the fiber.
            _frame = FiberFrame.Current;
        }

        _continuation = continuation;
    }
}
