using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using EioSharp.Tracing;

namespace EioSharp;

/// <summary>A node in the tree of cancellation: cancelling it cancels every unprotected context below it.</summary>
/// <remarks>
/// Eio: <c>Cancel.t</c>. Every fiber runs in a cancel context; switches, <see cref="Cancel.SubAsync(Func{CancelContext, Task})"/>
/// and <see cref="Cancel.ProtectAsync(Func{Task})"/> create new ones.
/// <para><b>Cancellation</b> (S13): <see cref="Cancel(Exception)"/> first marks the whole unprotected subtree as
/// cancelled, then wakes every fiber suspended in it with a <see cref="CancelledException"/>.</para>
/// <para><b>Thread safety</b> (S17): a context belongs to the domain that created it; cancelling it from another
/// domain throws <see cref="InvalidOperationException"/>. <see cref="IsCancelled"/> may be read from any thread.</para>
/// </remarks>
public sealed class CancelContext
{
    /// <summary><see cref="_bits"/>: the context ignores its parent's cancellation (<see cref="IsProtected"/>).</summary>
    private const long ProtectedBit = 1;

    /// <summary><see cref="_bits"/>: <see cref="Detach"/> has run.</summary>
    private const long DetachedBit = 2;

    /// <summary><see cref="_bits"/>: the trace id is the rest, shifted left by this many bits (0 until first used).</summary>
    private const int TraceIdShift = 2;

    private readonly CancelContext? _parent;
    private readonly Domain _domain;
    private volatile Exception? _reason;

    /// <summary>The suspended operations registered with this context, oldest first: a lone one has null links; two or
    /// more form a circular doubly linked list through <see cref="WaiterNode.Next"/>/<see cref="WaiterNode.Prev"/> (the
    /// head's <c>Prev</c> is the tail), so the context keeps no tail field (issue 20: a context is 72 B, was 88).</summary>
    private WaiterNode? _waitersHead;

    /// <summary>The rarely used parts, in one field (issue 20, h121: a context is 64 B, was 72): null, the child contexts
    /// (a <see cref="List{T}"/> of exactly that type), the token's source (<see cref="CancellationTokenSource"/>), or both
    /// (<see cref="ChildrenAndToken"/>). A race's or switch's context usually has neither.</summary>
    private object? _more;

    /// <summary>The two flags and the trace id in one field (issue 20: 8 B less per context; ids from
    /// <see cref="EioTrace.NewId"/> stay far below 2^61). Bits are only ever added, atomically (a dump on another
    /// thread may give the trace id while the domain detaches the context).</summary>
    private long _bits;

    internal CancelContext(Domain domain, CancelContext? parent, bool isProtected)
    {
        _domain = domain;
        _parent = parent;
        _bits = isProtected ? ProtectedBit : 0;
        if (parent is not null)
        {
            parent.CheckDomain();
            parent.AddChild(this);
            if (!isProtected && parent._reason is { } r)
            {
                _reason = r;
            }
        }

        if (EioTrace.On)
        {
            EioTrace.CancelCreated(this, parent);
        }
    }

    /// <summary>A process-unique id for traces and dumps, given on first use.</summary>
    internal long TraceId
    {
        get
        {
            long bits = Volatile.Read(ref _bits);
            if ((bits >> TraceIdShift) != 0)
            {
                return bits >> TraceIdShift;
            }

            // A dump thread may ask while the domain detaches the context or also asks: set the id once, losing no flag.
            long fresh = EioTrace.NewId();
            while (true)
            {
                long seen = Interlocked.CompareExchange(ref _bits, bits | (fresh << TraceIdShift), bits);
                if (seen == bits)
                {
                    return fresh;
                }

                bits = seen;
                if ((bits >> TraceIdShift) != 0)
                {
                    return bits >> TraceIdShift;
                }
            }
        }
    }

    internal CancelContext? Parent => _parent;

    /// <summary>True once this context (or an unprotected ancestor) was cancelled.</summary>
    public bool IsCancelled => _reason is not null;

    /// <summary>Why the context was cancelled, or <see langword="null"/>.</summary>
    public Exception? Reason => _reason;

    /// <summary>True for a context made by <see cref="Cancel.ProtectAsync(Func{Task})"/>: it ignores its parent's cancellation.</summary>
    public bool IsProtected => (_bits & ProtectedBit) != 0;

    internal Domain Domain => _domain;

    /// <summary>A token that fires when this context is cancelled, for ordinary .NET APIs (S17a).</summary>
    /// <remarks>Created on first use. The token's callbacks run on this context's domain, during <see cref="Cancel(Exception)"/>.
    /// The token itself may be passed to any thread; getting it is a use of the context (S17).</remarks>
    /// <exception cref="InvalidOperationException">Read from a domain other than the context's (S17).</exception>
    public CancellationToken Token
    {
        get
        {
            CheckDomain();
            var source = TokenSource;
            if (source is null)
            {
                source = new CancellationTokenSource();
                if (_reason is not null)
                {
                    source.Cancel();
                }

                _more = _more switch
                {
                    null => source,
                    ChildrenAndToken both => both.WithToken(source),
                    var children => new ChildrenAndToken((List<CancelContext>)children, source),
                };
            }

            return source.Token;
        }
    }

    /// <summary>Cancels this context and its unprotected descendants; a no-op if it is already cancelled.</summary>
    /// <param name="reason">Why; becomes <see cref="CancelledException.Reason"/> for the fibers that are woken.</param>
    /// <exception cref="ArgumentNullException"><paramref name="reason"/> is null.</exception>
    /// <exception cref="InvalidOperationException">Called from a domain other than the context's (S17).</exception>
    /// <remarks>Eio: <c>Cancel.cancel</c>.</remarks>
    public void Cancel(Exception reason)
    {
        ArgumentNullException.ThrowIfNull(reason);
        CheckDomain();
        if (_reason is not null)
        {
            return;
        }

        // Phase 1: mark the whole subtree, collecting the suspended operations and tokens to fire.
        var found = default(Found);
        Mark(reason, ref found);
        if (EioTrace.On)
        {
            EioTrace.CancelCancelled(this, reason);
        }

        // Phase 2: wake them.
        if (found.FirstNode is { } first)
        {
            first.TryCancel(new CancelledException(found.FirstContext!._reason ?? reason));
        }

        if (found.MoreNodes is { } more)
        {
            foreach (var (ctx, node) in more)
            {
                node.TryCancel(new CancelledException(ctx._reason ?? reason));
            }
        }

        if (found.Tokens is { } tokens)
        {
            foreach (var t in tokens)
            {
                try
                {
                    t.Cancel();
                }
                catch (AggregateException)
                {
                    // A foreign callback threw; the cancellation itself has been delivered.
                }
            }
        }
    }

    /// <summary>What phase 1 of <see cref="Cancel(Exception)"/> found to wake, in order: the first suspended operation inline
    /// and the rest in lists made only when needed (issue 20: cancelling one waiter, as a race does, allocates no list).</summary>
    private struct Found
    {
        internal CancelContext? FirstContext;
        internal WaiterNode? FirstNode;
        internal List<(CancelContext Ctx, WaiterNode Node)>? MoreNodes;
        internal List<CancellationTokenSource>? Tokens;

        internal void Add(CancelContext ctx, WaiterNode node)
        {
            if (FirstNode is null)
            {
                FirstContext = ctx;
                FirstNode = node;
            }
            else
            {
                (MoreNodes ??= new List<(CancelContext, WaiterNode)>()).Add((ctx, node));
            }
        }
    }

    private void Mark(Exception reason, ref Found found)
    {
        if (_reason is not null)
        {
            return;
        }

        _reason = reason;
        if (_waitersHead is { } head)
        {
            var n = head;
            do
            {
                found.Add(this, n);
                n = n.Next;
            }
            while (n is not null && !ReferenceEquals(n, head));
        }

        if (TokenSource is { } source)
        {
            (found.Tokens ??= new List<CancellationTokenSource>()).Add(source);
        }

        if (Children is { } children)
        {
            foreach (var c in children)
            {
                if (!c.IsProtected)
                {
                    c.Mark(reason, ref found);
                }
            }
        }
    }

    /// <summary>Throws <see cref="CancelledException"/> if this context is cancelled.</summary>
    /// <exception cref="CancelledException">The context is cancelled.</exception>
    public void ThrowIfCancelled()
    {
        if (_reason is not null)
        {
            throw MakeCancelled();
        }
    }

    internal CancelledException MakeCancelled() => new(_reason!);

    internal void CheckDomain() => _domain.CheckCurrent("This cancel context");

    // The suspended operations, oldest first, linked through WaiterNode.Prev/Next from _waitersHead, with no tail field
    // (issue 20, session 15: h96 made the context 72 B, was 88; h95 made the lone case cheap). A lone waiter, the usual
    // case, has null links: adding it stores two references and removing it stores only nulls (no write barrier). Two or
    // more form a circle (the head's Prev is the tail), so appending needs no tail field.

    internal void AddWaiter(WaiterNode node)
    {
        node.Context = this;
        var head = _waitersHead;
        if (head is null)
        {
            node.Prev = null;
            node.Next = null;
            _waitersHead = node;
            return;
        }

        // At the tail: before the head, in the circle (a lone head is its own tail).
        var tail = head.Prev ?? head;
        node.Prev = tail;
        node.Next = head;
        tail.Next = node;
        head.Prev = node;
    }

    internal void RemoveWaiter(WaiterNode node)
    {
        if (!ReferenceEquals(node.Context, this))
        {
            return;
        }

        node.Context = null;
        var next = node.Next;
        if (next is null)
        {
            // The only one.
            System.Diagnostics.Debug.Assert(ReferenceEquals(_waitersHead, node) && node.Prev is null, "a lone waiter is the head");
            _waitersHead = null;
            return;
        }

        var prev = node.Prev!;
        if (ReferenceEquals(next, prev))
        {
            // One left: it goes back to null links.
            next.Prev = null;
            next.Next = null;
            _waitersHead = next;
        }
        else
        {
            prev.Next = next;
            next.Prev = prev;
            if (ReferenceEquals(_waitersHead, node))
            {
                _waitersHead = next;
            }
        }

        node.Prev = node.Next = null;
    }

    /// <summary>Removes this finished context from its parent so it can be collected.</summary>
    internal void Detach()
    {
        if ((_bits & DetachedBit) != 0)
        {
            return;
        }

        Interlocked.Or(ref _bits, DetachedBit);
        _parent?.Children?.Remove(this);
        switch (_more)
        {
            case CancellationTokenSource source:
                source.Dispose();
                _more = null;
                break;
            case ChildrenAndToken both:
                both.Token?.Dispose();
                _more = both.Children;
                break;
        }
    }

    /// <summary>This context's children, or null (see <see cref="_more"/>).</summary>
    private List<CancelContext>? Children
    {
        get
        {
            var more = _more;
            if (more is null || more.GetType() == typeof(List<CancelContext>))
            {
                return Unsafe.As<List<CancelContext>>(more); // the usual case: one type compare, no cast helper
            }

            return (more as ChildrenAndToken)?.Children;
        }
    }

    /// <summary>This context's token source, or null (see <see cref="_more"/>).</summary>
    private CancellationTokenSource? TokenSource => _more switch
    {
        CancellationTokenSource source => source,
        ChildrenAndToken both => both.Token,
        _ => null,
    };

    private void AddChild(CancelContext child)
    {
        var more = _more;
        if (more is not null && more.GetType() == typeof(List<CancelContext>))
        {
            Unsafe.As<List<CancelContext>>(more).Add(child); // the usual case: one type compare, no cast helper
            return;
        }

        switch (more)
        {
            case null:
                _more = new List<CancelContext> { child };
                break;
            case ChildrenAndToken both:
                both.Children.Add(child);
                break;
            default:
                _more = new ChildrenAndToken(new List<CancelContext> { child }, (CancellationTokenSource)more);
                break;
        }
    }

    /// <summary>A context with both children and a token source (see <see cref="_more"/>).</summary>
    private sealed class ChildrenAndToken(List<CancelContext> children, CancellationTokenSource? token)
    {
        internal List<CancelContext> Children { get; } = children;

        internal CancellationTokenSource? Token { get; private set; } = token;

        internal ChildrenAndToken WithToken(CancellationTokenSource source)
        {
            Token = source;
            return this;
        }
    }
}

/// <summary>Thrown into a fiber whose cancel context was cancelled, at its next suspension point.</summary>
/// <remarks>
/// Eio: <c>Eio.Cancel.Cancelled</c>. Derives from <see cref="OperationCanceledException"/> so .NET code that
/// handles cancellation recognises it. Catching it and carrying on is a bug (S16): cancellation is not error
/// reporting. Use <see cref="Fiber.Check"/> to tell whether the current fiber is really cancelled.
/// </remarks>
public sealed class CancelledException : OperationCanceledException
{
    /// <summary>Creates the exception for a cancellation caused by <paramref name="reason"/>.</summary>
    /// <param name="reason">The exception passed to <see cref="CancelContext.Cancel(Exception)"/>.</param>
    public CancelledException(Exception reason)
        : base((string?)null)
    {
        ArgumentNullException.ThrowIfNull(reason);
        Reason = reason;
    }

    /// <summary>The cause of the cancellation (for debugging; do not branch on it).</summary>
    public Exception Reason { get; }

    /// <summary>"Cancelled: " and the reason's message.</summary>
    /// <remarks>Made on each read, not kept (issue 20: most cancellations unwind fibers and are never printed, and one is
    /// made per cancelled suspension, so a cache field made every one 8 B larger: 136 B, was 144).</remarks>
    public override string Message => "Cancelled: " + Reason.Message;
}

/// <summary>Cancellation scopes.</summary>
/// <remarks>Eio: <c>Eio.Cancel</c>.</remarks>
public static class Cancel
{
    /// <summary>Runs <paramref name="body"/> in a new child cancel context that it may cancel itself.</summary>
    /// <param name="body">The code to run; receives the new context.</param>
    /// <returns>A task that completes when <paramref name="body"/> does.</returns>
    /// <exception cref="CancelledException">The context was cancelled and <paramref name="body"/> let the cancellation escape,
    /// or the parent is already cancelled when this is called.</exception>
    /// <remarks>Eio: <c>Cancel.sub</c>. <b>Scheduling</b>: <paramref name="body"/> starts at once, on the calling fiber.</remarks>
    public static Task SubAsync(Func<CancelContext, Task> body) => SubAsync<bool>(async c => { await body(c); return true; });

    /// <summary>Runs <paramref name="body"/> in a new child cancel context and returns its result.</summary>
    /// <typeparam name="T">The result type.</typeparam>
    /// <param name="body">The code to run; receives the new context.</param>
    /// <returns>The value <paramref name="body"/> returned.</returns>
    /// <exception cref="CancelledException">The parent is already cancelled, or the cancellation escaped <paramref name="body"/>.</exception>
    /// <remarks>Eio: <c>Cancel.sub</c>.</remarks>
    public static async Task<T> SubAsync<T>(Func<CancelContext, Task<T>> body)
    {
        var frame = FiberFrame.Require();
        frame.Cancel.ThrowIfCancelled();
        var ctx = new CancelContext(frame.Fiber.Domain, frame.Cancel, isProtected: false);
        var inner = new InnerFrame(frame.Fiber, ctx, frame.Switch);
        FiberFrame.Enter(inner);
        try
        {
            return await body(ctx);
        }
        finally
        {
            ctx.Detach();
            inner.Exit();
        }
    }

    /// <summary>Runs <paramref name="body"/> in a context that ignores the caller's cancellation (S15).</summary>
    /// <param name="body">The code to protect.</param>
    /// <returns>A task that completes when <paramref name="body"/> does.</returns>
    /// <remarks>
    /// Eio: <c>Cancel.protect</c>. The parent's cancellation is not re-checked when <paramref name="body"/> returns.
    /// Use sparingly, for clean-up that must finish (for example flushing a log before replying).
    /// </remarks>
    public static Task ProtectAsync(Func<Task> body) => ProtectAsync<bool>(async () => { await body(); return true; });

    /// <summary>Runs <paramref name="body"/> in a context that ignores the caller's cancellation and returns its result (S15).</summary>
    /// <typeparam name="T">The result type.</typeparam>
    /// <param name="body">The code to protect.</param>
    /// <returns>The value <paramref name="body"/> returned.</returns>
    /// <remarks>Eio: <c>Cancel.protect</c>.</remarks>
    public static async Task<T> ProtectAsync<T>(Func<Task<T>> body)
    {
        var frame = FiberFrame.Require();
        var ctx = new CancelContext(frame.Fiber.Domain, frame.Cancel, isProtected: true);
        var inner = new InnerFrame(frame.Fiber, ctx, frame.Switch);
        FiberFrame.Enter(inner);
        try
        {
            return await body();
        }
        finally
        {
            ctx.Detach();
            inner.Exit();
        }
    }

    internal static ExceptionDispatchInfo Capture(Exception ex) => ExceptionDispatchInfo.Capture(ex);
}
