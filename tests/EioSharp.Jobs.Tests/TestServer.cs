using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace EioSharp.Jobs.Tests;

/// <summary>Runs <see cref="JobsServer.RunAsync"/> in-process under <see cref="EioMain.Run(Func{Stdenv, Task})"/> on its own thread, on port 0.</summary>
internal sealed class TestServer : IDisposable
{
    private readonly Thread _thread;
    private readonly Resolver<bool> _stopper;
    private Exception? _error;

    private TestServer(JobsOptions options)
    {
        var (stop, stopper) = Promise.Create<bool>();
        _stopper = stopper;
        var ready = new TaskCompletionSource<IPEndPoint>(TaskCreationOptions.RunContinuationsAsynchronously);
        _thread = new Thread(() =>
        {
            try
            {
                EioMain.Run(env => JobsServer.RunAsync(env, options, stop, Log.Enqueue, ep => ready.TrySetResult((IPEndPoint)ep)));
            }
            catch (Exception ex)
            {
                _error = ex;
                ready.TrySetException(ex);
            }
        })
        { IsBackground = true, Name = "jobs-test-server" };
        _thread.Start();
        EndPoint = ready.Task.WaitAsync(TimeSpan.FromSeconds(20)).GetAwaiter().GetResult();
    }

    public IPEndPoint EndPoint { get; }

    public ConcurrentQueue<string> Log { get; } = new();

    public static TestServer Start(JobsOptions? options = null) =>
        new((options ?? new JobsOptions()) with { Port = 0, Bind = "127.0.0.1" });

    /// <summary>Asks the server to stop and waits for <see cref="JobsServer.RunAsync"/> to return.</summary>
    public bool Stop(TimeSpan timeout)
    {
        _stopper.TryResolve(true);
        bool joined = _thread.Join(timeout);
        if (_error is not null)
        {
            throw new InvalidOperationException("The server failed.", _error);
        }

        return joined;
    }

    public Client Connect() => new(EndPoint);

    /// <summary>Warnings the server logged (handler errors would show up here).</summary>
    public string[] Warnings => Log.Where(l => l.StartsWith("WARNING", StringComparison.Ordinal)).ToArray();

    public void Dispose()
    {
        if (_thread.IsAlive)
        {
            Assert.True(Stop(TimeSpan.FromSeconds(30)), "the server did not stop");
        }
    }
}

/// <summary>A blocking line client with a read timeout (tests must not hang).</summary>
internal sealed class Client : IDisposable
{
    private readonly StreamReader _reader;

    public Client(IPEndPoint ep)
    {
        Socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true, ReceiveTimeout = 30_000 };
        Socket.Connect(ep);
        _reader = new StreamReader(new NetworkStream(Socket, ownsSocket: false), Encoding.ASCII);
    }

    public Socket Socket { get; }

    public void Send(string text) => Socket.Send(Encoding.ASCII.GetBytes(text));

    public void SendLines(IEnumerable<string> lines) => Send(string.Concat(lines.Select(l => l + "\n")));

    /// <summary>The next line, or null at end of input.</summary>
    public string? ReadLine() => _reader.ReadLine();

    public string Ask(string line)
    {
        Send(line + "\n");
        return ReadLine() ?? throw new EndOfStreamException("connection closed");
    }

    public List<string> ReadToEnd()
    {
        var lines = new List<string>();
        while (ReadLine() is { } l)
        {
            lines.Add(l);
        }

        return lines;
    }

    public void ShutdownSend() => Socket.Shutdown(SocketShutdown.Send);

    /// <summary>Closes with a reset (SO_LINGER 0): the server sees the client vanish.</summary>
    public void Abort()
    {
        Socket.LingerState = new LingerOption(true, 0);
        Socket.Close();
    }

    public void Dispose() => Socket.Dispose();
}
