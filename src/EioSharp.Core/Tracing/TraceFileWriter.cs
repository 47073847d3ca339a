using System.Diagnostics;

namespace EioSharp.Tracing;

/// <summary>The thread that drains the rings of a session into a <see cref="ChromeTraceWriter"/> on a file.</summary>
internal sealed class TraceFileWriter
{
    private readonly ChromeTraceWriter _writer;
    private readonly Dictionary<TraceRing, long> _cursors = [];
    private readonly ManualResetEventSlim _stop = new(false);
    private readonly SemaphoreSlim _kick = new(0, 1);
    private readonly List<TraceEvent> _batch = [];
    private readonly List<(int Id, string Name)> _names = [];
    private readonly List<(int Id, long Lost, long Timestamp)> _losses = [];
    private Thread? _thread;
    private long _lost;

    public TraceFileWriter(string path)
    {
        Path = System.IO.Path.GetFullPath(path);
        _writer = new ChromeTraceWriter(new FileStream(Path, FileMode.Create, FileAccess.Write, FileShare.Read, 1 << 16));
    }

    public string Path { get; }

    public long Lost => Interlocked.Read(ref _lost);

    public void StartThread()
    {
        _thread = new Thread(Loop) { IsBackground = true, Name = "eio trace writer" };
        _thread.UnsafeStart();
    }

    /// <summary>Drains what is left, closes the file (called after recording stopped).</summary>
    public void Finish()
    {
        _stop.Set();
        Kick();
        _thread?.Join();
        lock (_writer)
        {
            Drain();
            _writer.Dispose();
        }
    }

    /// <summary>True while a drain asked for by <see cref="Kick"/> has not started.</summary>
    internal bool KickPending => _kick.CurrentCount != 0;

    /// <summary>Asks for a drain now (a ring has filled another quarter; called by its writer, a domain's thread).</summary>
    /// <remarks>Cheap when a drain is already asked for: no wake-up.</remarks>
    public void Kick()
    {
        if (_kick.CurrentCount == 0)
        {
            try
            {
                _kick.Release();
            }
            catch (SemaphoreFullException)
            {
                // Another ring kicked first: one drain reads them all.
            }
        }
    }

    private void Loop()
    {
        while (true)
        {
            _kick.Wait(EioTrace.FlushInterval);
            if (_stop.IsSet)
            {
                return;
            }

            lock (_writer)
            {
                Drain();
            }
        }
    }

    private void Drain()
    {
        _batch.Clear();
        _names.Clear();
        _losses.Clear();
        TraceClock.Recalibrate();
        lock (EioTrace.SyncRoot)
        {
            var rings = EioTrace.RingsLocked;
            for (int i = 0; i < rings.Count; i++)
            {
                var ring = rings[i];
                bool retired = ring.Retired; // read before the events: a retired ring has had its last write
                _cursors.TryGetValue(ring, out long cursor);
                _names.Add((ring.DomainId, ring.Name));
                int before = _batch.Count;
                long lost = ring.ReadFrom(ref cursor, _batch);
                _cursors[ring] = cursor;
                if (lost > 0)
                {
                    Interlocked.Add(ref _lost, lost);
                    long ts = _batch.Count > before ? _batch[before].Timestamp : Stopwatch.GetTimestamp();
                    _losses.Add((ring.DomainId, lost, ts));
                }

                if (retired)
                {
                    _cursors.Remove(ring);
                    EioTrace.ReleaseDrained(ring); // removes it from `rings`
                    i--;
                }
            }
        }

        foreach (var (id, name) in _names)
        {
            _writer.NameDomain(id, name);
        }

        foreach (var (id, lost, ts) in _losses)
        {
            _writer.Lost(id, lost, ts);
        }

        EioTrace.SortByTime(_batch);
        _writer.Write(_batch);
    }
}
