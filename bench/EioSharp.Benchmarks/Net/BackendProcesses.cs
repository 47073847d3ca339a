using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using EioSharp.Fs;
using EioSharp.Net;

namespace EioSharp.Benchmarks.Net;

/// <summary>
/// Out-of-process halves of the backend benchmarks (bench/echo-backends.sh, bench/file-sync-backends.sh), so that a
/// server's CPU time can be read from /proc/PID/stat apart from its client's:
/// <list type="bullet">
/// <item><c>echo-server portable|epoll|uring|raw</c>: a loopback echo server on a free port (printed on stdout), until
/// stdin closes. <c>raw</c> is a plain .NET Socket server (a Task per connection on the thread pool).</item>
/// <item><c>echo-client PORT CONNECTIONS ROUNDTRIPS</c>: each connection sends a 16-byte line and waits for it to come back,
/// ROUNDTRIPS times; prints the wall time and round trips per second.</item>
/// <item><c>churn-client PORT WORKERS CONNECTIONS</c>: WORKERS threads together open CONNECTIONS connections one after another
/// (connect, one 16-byte round trip, close); prints the wall time and connections per second (bench/accept-backends.sh).</item>
/// <item><c>echo-server uring-oneshot</c>: the io_uring server with multishot accept turned off (one SQE per accept), to
/// compare with <c>uring</c>; <c>uring-nodefer</c> (echo-server and file-sync): rings without
/// IORING_SETUP_SINGLE_ISSUER | DEFER_TASKRUN; <c>uring-recvmulti</c> (echo-server): multishot recv with provided buffers on
/// (off by default: it measured slower); <c>uring-recv1</c>: the default, named for comparisons.</item>
/// <item><c>file-sync portable|epoll|uring|raw COUNT SIZE DIR</c>: COUNT times, write SIZE bytes at the end of a new file
/// in DIR and fsync it; prints CPU and wall time and context switches (all the process's threads, io_uring's io-wq
/// workers included) per iteration. <c>raw</c> is <see cref="RandomAccess.Write(Microsoft.Win32.SafeHandles.SafeFileHandle, ReadOnlySpan{byte}, long)"/>
/// plus <see cref="FileStream.Flush(bool)"/> on the calling thread; the backends use <see cref="FileWriter.WriteAtAsync"/> and
/// <see cref="FileWriter.SyncAsync"/> in a fiber. Suffixes (any variant, in this order): <c>-linked</c> uses
/// <see cref="FileWriter.WriteAtAndSyncAsync"/> (on io_uring a WRITE linked to an FSYNC), or <c>-inline</c> a blocking
/// <see cref="FileWriter.WriteAt"/> then the async sync (the KV server's AOF does that); <c>-datasync</c> syncs with
/// <c>fdatasync</c> (raw: the libc call) instead of <c>fsync</c>.</item>
/// </list>
/// </summary>
public static class BackendProcesses
{
    private static readonly byte[] Line = "0123456789abcde\n"u8.ToArray();

    public static int Run(string[] args)
    {
        switch (args[0])
        {
            case "echo-server":
                EchoServer(args[1]);
                return 0;
            case "echo-client":
                EchoClient(int.Parse(args[1]), int.Parse(args[2]), int.Parse(args[3]));
                return 0;
            case "churn-client":
                ChurnClient(int.Parse(args[1]), int.Parse(args[2]), int.Parse(args[3]));
                return 0;
            case "file-sync":
                FileSync(args[1], int.Parse(args[2]), int.Parse(args[3]), args[4]);
                return 0;
            default:
                Console.Error.WriteLine($"unknown mode {args[0]}");
                return 2;
        }
    }

    private static EioBackend Backend(string name) => name.Replace("-linked", "").Replace("-inline", "").Replace("-datasync", "") switch
    {
        "portable" => EioBackend.Portable,
        "epoll" => EioBackend.Epoll,
        "uring" or "uring-oneshot" or "uring-nodefer" or "uring-recv1" or "uring-recvmulti" => EioBackend.Uring,
        _ => throw new ArgumentException($"unknown backend {name}"),
    };

    private static void EchoServer(string backend)
    {
        if (backend == "raw")
        {
            var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            listener.Listen(512);
            Console.WriteLine(((IPEndPoint)listener.LocalEndPoint!).Port);
            _ = RawAcceptLoopAsync(listener);
            Console.In.ReadToEnd();
            return;
        }

        Variant(backend);
        EioMain.Run(async env =>
        {
            if (env.Backend != Backend(backend).ToString().ToLowerInvariant())
            {
                throw new InvalidOperationException($"asked for {backend}, got {env.Backend}");
            }

            var (stop, stopper) = Promise.Create<bool>();
            var stdinWatcher = new Thread(() =>
            {
                Console.In.ReadToEnd();
                stopper.TryResolve(true);
            }) { IsBackground = true };
            await Switch.RunAsync(async sw =>
            {
                var listener = env.Net.Listen(sw, new IPEndPoint(IPAddress.Loopback, 0), backlog: 512);
                Console.WriteLine(((IPEndPoint)listener.ListeningEndPoint).Port);
                stdinWatcher.Start();
                await listener.RunServerAsync(EchoAsync, _ => { }, stop: stop);
            });
        }, new EioOptions { Backend = Backend(backend) });
    }

    // The io_uring variants: uring-oneshot turns multishot accept off, uring-nodefer sets rings up without
    // SINGLE_ISSUER | DEFER_TASKRUN (both as on a kernel without them), uring-recvmulti turns multishot recv on, to measure
    // what each brings.
    private static void Variant(string backend)
    {
        EioSharp.Backends.Uring.UringPoller.MultishotAcceptDisabled = backend == "uring-oneshot";
        EioSharp.Backends.Uring.UringPoller.DeferTaskRunDisabled = backend == "uring-nodefer";
        EioSharp.Backends.Uring.UringPoller.MultishotRecvDisabled = backend != "uring-recvmulti";
    }

    private static async Task EchoAsync(StreamSocket conn, EndPoint peer)
    {
        var buf = new byte[4096];
        int n;
        while ((n = await conn.ReadAsync(buf)) > 0)
        {
            await conn.WriteAsync(buf.AsMemory(0, n));
        }
    }

    private static async Task RawAcceptLoopAsync(Socket listener)
    {
        while (true)
        {
            var c = await listener.AcceptAsync();
            c.NoDelay = true;
            _ = Task.Run(async () =>
            {
                using (c)
                {
                    var buf = new byte[4096];
                    try
                    {
                        int n;
                        while ((n = await c.ReceiveAsync(buf, SocketFlags.None)) > 0)
                        {
                            await c.SendAsync(buf.AsMemory(0, n), SocketFlags.None);
                        }
                    }
                    catch (SocketException)
                    {
                    }
                }
            });
        }
    }

    private static void EchoClient(int port, int connections, int roundTrips)
    {
        var clients = new Socket[connections];
        for (int i = 0; i < connections; i++)
        {
            clients[i] = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            clients[i].Connect(new IPEndPoint(IPAddress.Loopback, port));
        }

        var sw = Stopwatch.StartNew();
        Task.WhenAll(clients.Select(c => Task.Run(() => ClientLoopAsync(c, roundTrips)))).GetAwaiter().GetResult();
        sw.Stop();
        foreach (var c in clients)
        {
            c.Dispose();
        }

        long total = (long)connections * roundTrips;
        Console.WriteLine($"roundtrips={total} wall_s={sw.Elapsed.TotalSeconds:F3} rt_per_s={total / sw.Elapsed.TotalSeconds:F0}");
    }

    private static void ChurnClient(int port, int workers, int connections)
    {
        int next = 0;
        var sw = Stopwatch.StartNew();
        var threads = Enumerable.Range(0, workers).Select(_ => new Thread(() =>
        {
            var buf = new byte[Line.Length];
            while (Interlocked.Increment(ref next) <= connections)
            {
                using var c = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                c.Connect(new IPEndPoint(IPAddress.Loopback, port));
                c.Send(Line);
                int got = 0;
                while (got < buf.Length)
                {
                    int n = c.Receive(buf, got, buf.Length - got, SocketFlags.None);
                    if (n == 0)
                    {
                        throw new IOException("server closed");
                    }

                    got += n;
                }

                c.Shutdown(SocketShutdown.Both);
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        sw.Stop();
        Console.WriteLine($"connections={connections} wall_s={sw.Elapsed.TotalSeconds:F3} conn_per_s={connections / sw.Elapsed.TotalSeconds:F0}");
    }

    private static async Task ClientLoopAsync(Socket c, int roundTrips)
    {
        var buf = new byte[Line.Length];
        for (int i = 0; i < roundTrips; i++)
        {
            await c.SendAsync(Line, SocketFlags.None);
            int got = 0;
            while (got < buf.Length)
            {
                int n = await c.ReceiveAsync(buf.AsMemory(got), SocketFlags.None);
                if (n == 0)
                {
                    throw new IOException("server closed");
                }

                got += n;
            }
        }
    }

    private static void FileSync(string backend, int count, int size, string dir)
    {
        var data = new byte[size];
        Random.Shared.NextBytes(data);
        string path = Path.Combine(dir, $"file-sync-{backend}-{Environment.ProcessId}.bin");
        var proc = Process.GetCurrentProcess();
        TimeSpan cpu0 = default, cpu1 = default;
        long switches0 = 0, switches1 = 0, voluntary0 = 0, voluntary1 = 0;
        var wall = new Stopwatch();
        bool linked = backend.Contains("-linked"), inline = backend.Contains("-inline"), dataOnly = backend.Contains("-datasync");
        if (backend.StartsWith("raw", StringComparison.Ordinal))
        {
            using var fs = new FileStream(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, bufferSize: 0);
            long off = 0;
            for (int i = 0; i < count + Warmup(count); i++)
            {
                if (i == Warmup(count))
                {
                    switches0 = ContextSwitches(out voluntary0); // read before the CPU time: the reading is not counted
                    proc.Refresh();
                    cpu0 = proc.TotalProcessorTime;
                    wall.Start();
                }

                RandomAccess.Write(fs.SafeFileHandle, data, off);
                off += size;
                if (dataOnly)
                {
                    if (fdatasync((int)fs.SafeFileHandle.DangerousGetHandle()) != 0)
                    {
                        throw new IOException("fdatasync failed", Marshal.GetLastPInvokeError());
                    }
                }
                else
                {
                    fs.Flush(flushToDisk: true);
                }
            }

            wall.Stop();
            proc.Refresh();
            cpu1 = proc.TotalProcessorTime;
            switches1 = ContextSwitches(out voluntary1);
        }
        else
        {
            Variant(backend);
            EioMain.Run(async env =>
            {
                if (env.Backend != Backend(backend).ToString().ToLowerInvariant())
                {
                    throw new InvalidOperationException($"asked for {backend}, got {env.Backend}");
                }

                await Switch.RunAsync(async sw =>
                {
                    var f = await (env.Fs / path).OpenWriteAsync(sw, FileCreate.Exclusive(UnixFileMode.UserRead | UnixFileMode.UserWrite));
                    long off = 0;
                    for (int i = 0; i < count + Warmup(count); i++)
                    {
                        if (i == Warmup(count))
                        {
                            switches0 = ContextSwitches(out voluntary0); // read before the CPU time: the reading is not counted
                            proc.Refresh();
                            cpu0 = proc.TotalProcessorTime;
                            wall.Start();
                        }

                        if (linked)
                        {
                            await f.WriteAtAndSyncAsync(off, data, dataOnly);
                        }
                        else if (inline)
                        {
                            f.WriteAt(off, data); // as the KV server's AOF: a blocking pwrite into the page cache, then the sync
                            await (dataOnly ? f.DataSyncAsync() : f.SyncAsync());
                        }
                        else
                        {
                            await f.WriteAtAsync(off, data);
                            await (dataOnly ? f.DataSyncAsync() : f.SyncAsync());
                        }

                        off += size;
                    }

                    wall.Stop();
                    proc.Refresh();
                    cpu1 = proc.TotalProcessorTime;
                    switches1 = ContextSwitches(out voluntary1);
                });
            }, new EioOptions { Backend = Backend(backend) });
        }

        File.Delete(path);
        Console.WriteLine(
            $"{backend} n={count} size={size} cpu_us_per_op={(cpu1 - cpu0).TotalMicroseconds / count:F2} " +
            $"wall_us_per_op={wall.Elapsed.TotalMicroseconds / count:F2} switches_per_op={(switches1 - switches0) / (double)count:F2} " +
            $"voluntary_per_op={(voluntary1 - voluntary0) / (double)count:F2}");
    }

    /// <summary>Voluntary plus involuntary context switches of the process's threads now alive (io_uring's iou-wrk workers
    /// included: they are threads of the process), from /proc/self/task/*/status; 0 where there is no /proc.
    /// <paramref name="voluntary"/>: the voluntary ones alone (a thread that blocked), which a loaded machine's preemptions
    /// do not inflate.</summary>
    private static long ContextSwitches(out long voluntary)
    {
        long total = 0;
        voluntary = 0;
        if (!Directory.Exists("/proc/self/task"))
        {
            return 0;
        }

        foreach (string task in Directory.GetDirectories("/proc/self/task"))
        {
            try
            {
                foreach (string line in File.ReadLines(Path.Combine(task, "status")))
                {
                    if (line.StartsWith("voluntary_ctxt_switches:", StringComparison.Ordinal)
                        || line.StartsWith("nonvoluntary_ctxt_switches:", StringComparison.Ordinal))
                    {
                        long n = long.Parse(line.AsSpan(line.IndexOf(':') + 1).Trim());
                        total += n;
                        voluntary += line[0] == 'v' ? n : 0;
                    }
                }
            }
            catch (IOException)
            {
                // the thread ended meanwhile
            }
        }

        return total;
    }

    private static int Warmup(int count) => Math.Max(10, count / 10);

    [DllImport("libc", SetLastError = true)]
    private static extern int fdatasync(int fd);
}
