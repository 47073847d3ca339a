namespace EioSharp.Net;

/// <summary>The listening sockets one server accepts on (<see cref="ListeningSocket.RunServerAsync(ServerListeners, Func{StreamSocket, System.Net.EndPoint, Task}, Action{Exception}, int, Domains.DomainManager?, int, Promise{bool}?)"/>),
/// which may change while it runs: a socket added is accepted on by every domain of the server; a socket retired stops
/// being accepted on, on every domain, and is closed, while the connections accepted from it keep running.</summary>
/// <remarks>
/// [ext] Not in Eio (whose <c>Net.run_server</c> takes one socket). This is what a server needs to move its listening
/// address at run time, as Redis's <c>CONFIG SET port</c> and <c>CONFIG SET bind</c>: bind the new sockets first
/// (<see cref="Replace"/>), and only once that succeeded stop and close the old ones; connected clients stay connected.
/// <para><b>Thread safety</b>: every member may be called from any domain; changes are serialized by a lock.</para>
/// <para><b>Ownership</b>: a socket stays owned by the switch it was opened on; the set only closes the sockets it retires
/// (early, which the switch allows). Sockets opened by <see cref="Replace"/> are owned by the server's switch on the calling
/// domain, so they are closed at the latest when the server returns.</para>
/// </remarks>
public sealed class ServerListeners
{
    private readonly object _lock = new();
    private readonly List<Entry> _entries = [];
    private readonly Dictionary<Domain, Switch> _serverSwitches = [];
    private (Promise<bool> Promise, Resolver<bool> Resolver) _changed = Promise.Create<bool>();
    private bool _running;

    /// <summary>Creates the set with its first sockets.</summary>
    /// <param name="initial">The sockets to accept on (none is allowed: the server then accepts nothing until one is added).</param>
    /// <exception cref="ArgumentNullException"><paramref name="initial"/> or one of its sockets is null.</exception>
    /// <exception cref="ArgumentException">A socket is given twice.</exception>
    public ServerListeners(IEnumerable<ListeningSocket> initial)
    {
        ArgumentNullException.ThrowIfNull(initial);
        foreach (var socket in initial)
        {
            Add(socket);
        }
    }

    /// <summary>The sockets accepted on now (added and not retired), in the order they were added.</summary>
    public IReadOnlyList<ListeningSocket> Current
    {
        get
        {
            lock (_lock)
            {
                return _entries.Select(e => e.Socket).ToArray();
            }
        }
    }

    /// <summary>Adds a socket: every domain of a running server starts accepting on it (each at its next scheduling turn),
    /// a server started later accepts on it from the start.</summary>
    /// <param name="socket">A listening socket not in the set.</param>
    /// <exception cref="ArgumentNullException"><paramref name="socket"/> is null.</exception>
    /// <exception cref="ArgumentException">The socket is already in the set.</exception>
    /// <exception cref="ObjectDisposedException">The socket is closed.</exception>
    public void Add(ListeningSocket socket)
    {
        ArgumentNullException.ThrowIfNull(socket);
        ObjectDisposedException.ThrowIf(socket.IsClosed, socket);
        lock (_lock)
        {
            if (_entries.Any(e => ReferenceEquals(e.Socket, socket)))
            {
                throw new ArgumentException("The socket is already in the set.", nameof(socket));
            }

            _entries.Add(new Entry(socket));
            PublishLocked();
        }
    }

    /// <summary>Retires a socket: the kernel stops listening on it at once (new connections to its address are refused,
    /// connections not accepted yet are reset), every domain's accept loop on it ends, and the socket is closed once no
    /// accept on it is in flight (S29). The connections accepted from it are not affected.</summary>
    /// <param name="socket">A socket in the set.</param>
    /// <returns>A promise resolved once every accept loop on the socket has ended and the socket is closed (its file
    /// descriptor released).</returns>
    /// <exception cref="ArgumentNullException"><paramref name="socket"/> is null.</exception>
    /// <exception cref="ArgumentException">The socket is not in the set.</exception>
    /// <remarks>Never suspends: the accept loops end on their own domains afterwards.</remarks>
    public Promise<bool> Retire(ListeningSocket socket)
    {
        ArgumentNullException.ThrowIfNull(socket);
        Entry entry;
        lock (_lock)
        {
            entry = _entries.Find(e => ReferenceEquals(e.Socket, socket))
                ?? throw new ArgumentException("The socket is not in the set.", nameof(socket));
            _entries.Remove(entry);
            PublishLocked();
        }

        entry.Retire();
        return entry.Closed.Promise;
    }

    /// <summary>Replaces every socket of the set: opens the new ones on the calling domain and, only if all of them opened,
    /// adds them and retires the previous ones (see <see cref="Retire"/>). If one fails to open, those already opened are
    /// closed, the set is unchanged and the exception propagates. With <paramref name="retireFirst"/>, the previous
    /// sockets are retired before the new ones are opened, so that a new socket may take an address an old one held or
    /// one that conflicts with it (0.0.0.0 after 127.0.0.1 on the same port); if one then fails to open, the set is left
    /// empty and the caller reopens what it needs (as Redis's CONFIG SET bind restores the previous addresses).</summary>
    /// <param name="openers">One function per new socket; each is called on the calling thread with the running server's
    /// switch on the calling domain (pass it to <c>Net.Listen</c>) and returns the socket, or null to open nothing
    /// for that entry (an optional address that is not available).</param>
    /// <param name="retireFirst">Retire the previous sockets before opening the new ones (see above).</param>
    /// <returns>A promise resolved once every retired socket is closed.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="openers"/> is null.</exception>
    /// <exception cref="InvalidOperationException">No server is running on this set on the calling domain (call it from a
    /// connection handler, or from a fiber on one of the server's domains).</exception>
    /// <exception cref="NetException">An opener failed to bind or listen (the set is unchanged).</exception>
    /// <remarks>Never suspends, so a request handler can answer whether the new addresses are served. The new sockets
    /// stay owned by the server's switch on the calling domain: they are closed at the latest when the server returns.</remarks>
    public Promise<bool> Replace(IReadOnlyList<Func<Switch, ListeningSocket?>> openers, bool retireFirst = false)
    {
        ArgumentNullException.ThrowIfNull(openers);
        Switch sw;
        lock (_lock)
        {
            if (Domain.Current is not { } domain || !_serverSwitches.TryGetValue(domain, out sw!))
            {
                throw new InvalidOperationException("No server is running on these listeners on the calling domain.");
            }
        }

        List<Entry> old = [];
        if (retireFirst)
        {
            old = TakeAll();
            foreach (var entry in old)
            {
                entry.Retire(); // the kernel stops listening now: the addresses are free to bind again
            }
        }

        var opened = new List<ListeningSocket>(openers.Count);
        try
        {
            foreach (var open in openers)
            {
                if (open(sw) is { } socket)
                {
                    opened.Add(socket);
                }
            }
        }
        catch
        {
            foreach (var socket in opened)
            {
                socket.Close();
            }

            throw;
        }

        lock (_lock)
        {
            old.AddRange(_entries);
            _entries.Clear();
            _entries.AddRange(opened.Select(s => new Entry(s)));
            PublishLocked();
        }

        var (all, resolver) = Promise.Create<bool>();
        int remaining = old.Count + 1;
        void OneClosed()
        {
            if (Interlocked.Decrement(ref remaining) == 0)
            {
                resolver.TryResolve(true);
            }
        }

        foreach (var entry in old)
        {
            entry.Retire();
            entry.WhenClosed(OneClosed);
        }

        OneClosed();
        return all;
    }

    private List<Entry> TakeAll()
    {
        lock (_lock)
        {
            List<Entry> all = [.. _entries];
            _entries.Clear();
            PublishLocked();
            return all;
        }
    }

    private void PublishLocked()
    {
        var previous = _changed;
        _changed = Promise.Create<bool>();
        previous.Resolver.TryResolve(true);
    }

    /// <summary>The sockets now, and a promise resolved at the next change.</summary>
    internal (Entry[] Entries, Promise<bool> Changed) Snapshot()
    {
        lock (_lock)
        {
            return ([.. _entries], _changed.Promise);
        }
    }

    /// <summary>Marks the set as used by a running server (one at a time).</summary>
    internal void BeginRun()
    {
        lock (_lock)
        {
            if (_running)
            {
                throw new InvalidOperationException("A server is already running on these listeners.");
            }

            _running = true;
        }
    }

    internal void EndRun()
    {
        lock (_lock)
        {
            _running = false;
        }
    }

    /// <summary>Records the server's switch on the calling domain (where <see cref="Replace"/> opens sockets).</summary>
    internal void RegisterDomain(Domain domain, Switch sw)
    {
        lock (_lock)
        {
            _serverSwitches[domain] = sw;
        }
    }

    internal void UnregisterDomain(Domain domain)
    {
        lock (_lock)
        {
            _serverSwitches.Remove(domain);
        }
    }

    /// <summary>One socket of the set, with the accept loops (one per domain) running on it.</summary>
    internal sealed class Entry(ListeningSocket socket)
    {
        private int _loops;
        private bool _retired;
        private List<Action>? _whenClosed;

        public ListeningSocket Socket { get; } = socket;

        /// <summary>Resolved when the socket is retired: the accept loops on it end.</summary>
        public (Promise<bool> Promise, Resolver<bool> Resolver) Retired { get; } = Promise.Create<bool>();

        /// <summary>Resolved once retired, with no accept loop left, and closed.</summary>
        public (Promise<bool> Promise, Resolver<bool> Resolver) Closed { get; } = Promise.Create<bool>();

        public bool IsRetired => Volatile.Read(ref _retired);

        /// <summary>An accept loop starts on the socket; false if it is retired (then no loop may start).</summary>
        public bool TryJoin()
        {
            lock (this)
            {
                if (_retired)
                {
                    return false;
                }

                _loops++;
                return true;
            }
        }

        /// <summary>An accept loop on the socket ended; the last one after the retirement closes it.</summary>
        public void Leave()
        {
            bool close;
            lock (this)
            {
                close = --_loops == 0 && _retired;
            }

            if (close)
            {
                CloseNow();
            }
        }

        public void Retire()
        {
            bool close;
            lock (this)
            {
                if (_retired)
                {
                    return;
                }

                _retired = true;
                close = _loops == 0;
            }

            Retired.Resolver.TryResolve(true);
            Socket.StopListening(); // the kernel refuses new connections now, not when the last accept loop has noticed
            if (close)
            {
                CloseNow();
            }
        }

        public void WhenClosed(Action action)
        {
            lock (this)
            {
                if (!Closed.Promise.TryPeek(out _))
                {
                    (_whenClosed ??= []).Add(action);
                    return;
                }
            }

            action();
        }

        private void CloseNow()
        {
            Socket.Close();
            List<Action>? actions;
            lock (this)
            {
                Closed.Resolver.TryResolve(true);
                actions = _whenClosed;
                _whenClosed = null;
            }

            foreach (var action in actions ?? [])
            {
                action();
            }
        }
    }
}
