using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace EioSharp.Kv.EndToEnd.Differential;

/// <summary>A parsed RESP reply: <see cref="Kind"/> is the type byte (<c>+ - : $ * % ~ _ , #</c>), <see cref="Text"/>
/// the line or bulk payload (null for a nil), <see cref="Items"/> the elements of an aggregate (null for a nil array).</summary>
public sealed record Resp(char Kind, string? Text, IReadOnlyList<Resp>? Items)
{
    public bool IsError => Kind == '-';

    public bool IsNil => Text is null && Items is null && Kind is '$' or '*' or '_';

    /// <summary>The element texts of a flat array reply.</summary>
    public IEnumerable<string?> Strings => Items?.Select(i => i.Text) ?? [];

    public override string ToString()
    {
        if (Items is not null) return Kind + "[" + string.Join(", ", Items) + "]";
        if (Text is null) return Kind + "nil";
        return Kind + (Kind == '$' ? "\"" + Text.Replace("\r", "\\r").Replace("\n", "\\n") + "\"" : Text);
    }

    /// <summary>The same reply with array elements sorted (for replies whose order Redis does not define).</summary>
    public Resp Sorted() => Items is null ? this : this with { Items = [.. Items.OrderBy(i => i.ToString(), StringComparer.Ordinal)] };
}

/// <summary>A blocking RESP connection that sends batches and reads parsed replies.</summary>
public sealed class RespConnection : IDisposable
{
    private readonly Socket _socket;
    private readonly BufferedStream _in;

    public RespConnection(int port, int timeoutMs = 20_000)
    {
        _socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true, ReceiveTimeout = timeoutMs, SendTimeout = timeoutMs };
        _socket.Connect(IPAddress.Loopback, port);
        _in = new BufferedStream(new NetworkStream(_socket, ownsSocket: false), 1 << 16);
    }

    public static byte[] Encode(IReadOnlyList<string> args)
    {
        var sb = new StringBuilder();
        sb.Append('*').Append(args.Count).Append("\r\n");
        foreach (string a in args)
        {
            sb.Append('$').Append(Encoding.UTF8.GetByteCount(a)).Append("\r\n").Append(a).Append("\r\n");
        }
        return Encoding.UTF8.GetBytes(sb.ToString());
    }

    public void Send(byte[] data) => _socket.Send(data);

    /// <summary>Whether reply bytes are waiting on the socket (for a client with one command outstanding: whether its
    /// reply has started to arrive).</summary>
    public bool HasData() => _socket.Available > 0;

    public Resp Call(params string[] args)
    {
        Send(Encode(args));
        return Read();
    }

    /// <summary>Sends every command at once, then reads one reply each (pipelining).</summary>
    public List<Resp> Pipeline(IReadOnlyList<string[]> commands)
    {
        var buffer = new MemoryStream();
        foreach (string[] c in commands) buffer.Write(Encode(c));
        Send(buffer.ToArray());
        var replies = new List<Resp>(commands.Count);
        for (int i = 0; i < commands.Count; i++) replies.Add(Read());
        return replies;
    }

    public Resp Read()
    {
        string line = ReadLine();
        char kind = line[0];
        string rest = line[1..];
        switch (kind)
        {
            case '+' or '-' or ':' or ',' or '#' or '(':
                return new Resp(kind, rest, null);
            case '_':
                return new Resp(kind, null, null);
            case '$' or '=' or '!':
                int len = int.Parse(rest, CultureInfo.InvariantCulture);
                if (len < 0) return new Resp('$', null, null);
                byte[] data = new byte[len + 2];
                _in.ReadExactly(data);
                return new Resp(kind == '=' ? '$' : kind, Encoding.UTF8.GetString(data, 0, len), null);
            case '*' or '%' or '~' or '>':
                int count = int.Parse(rest, CultureInfo.InvariantCulture);
                if (count < 0) return new Resp('*', null, null);
                int n = kind == '%' ? count * 2 : count;
                var items = new List<Resp>(n);
                for (int i = 0; i < n; i++) items.Add(Read());
                return new Resp(kind, null, items);
            default:
                throw new InvalidDataException($"Unexpected reply line '{line}'.");
        }
    }

    private string ReadLine()
    {
        var sb = new StringBuilder();
        while (true)
        {
            int b = _in.ReadByte();
            if (b < 0) throw new EndOfStreamException("The server closed the connection.");
            if (b == '\n' && sb.Length > 0 && sb[^1] == '\r') return sb.ToString(0, sb.Length - 1);
            sb.Append((char)b);
        }
    }

    public void Dispose()
    {
        _in.Dispose();
        _socket.Dispose();
    }
}

/// <summary>A redis-server started on a free loopback port in a temporary directory, stopped by its PID.</summary>
public sealed class RedisServerProcess : IDisposable
{
    private readonly Process _process;
    private readonly TempDir _dir = new();

    private RedisServerProcess(int port, IEnumerable<string> extraArgs, string? configFile = null, IReadOnlyDictionary<string, string?>? environment = null)
    {
        Port = port;
        var psi = new ProcessStartInfo("redis-server") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var (name, value) in environment ?? new Dictionary<string, string?>())
        {
            psi.Environment[name] = value;
        }
        if (configFile is not null)
        {
            psi.ArgumentList.Add(configFile); // redis-server takes its config file as the first argument only
        }
        foreach (string a in new[] { "--port", port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--dir", _dir.Path,
                     "--save", "", "--appendonly", "no", "--protected-mode", "no" }.Concat(extraArgs))
        {
            psi.ArgumentList.Add(a);
        }
        _process = Process.Start(psi)!;
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public int Port { get; }

    public int Pid => _process.Id;

    /// <summary>The server's directory (<c>--dir</c>: dump.rdb...), deleted on dispose.</summary>
    public string Dir => _dir.Path;

    /// <summary>Whether the server exited.</summary>
    public bool HasExited => _process.HasExited;

    /// <summary>Waits for the server to exit by itself; returns the exit code, or null if it still runs after <paramref name="timeout"/>.</summary>
    public int? WaitForExit(TimeSpan timeout) => _process.WaitForExit(timeout) ? _process.ExitCode : null;

    public static RedisServerProcess Start(params string[] extraArgs) => WaitReady(new RedisServerProcess(FreePort(), extraArgs));

    /// <summary>Starts redis-server with these environment variables added (NOTIFY_SOCKET...).</summary>
    public static RedisServerProcess StartWithEnvironment(IReadOnlyDictionary<string, string?> environment, params string[] extraArgs) =>
        WaitReady(new RedisServerProcess(FreePort(), extraArgs, environment: environment));

    /// <summary>Starts redis-server with <paramref name="configFile"/> (the options of <see cref="Start"/> override it).</summary>
    public static RedisServerProcess StartWithConfig(string configFile, params string[] extraArgs) =>
        WaitReady(new RedisServerProcess(FreePort(), extraArgs, configFile));

    private static RedisServerProcess WaitReady(RedisServerProcess server)
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                using var c = new RespConnection(server.Port, 2000);
                if (c.Call("PING").Text == "PONG")
                {
                    string version = c.Call("INFO", "server").Text!.Split("redis_version:")[1].Split('\r')[0];
                    if (int.Parse(version.Split('.')[0], CultureInfo.InvariantCulture) < 7)
                    {
                        server.Dispose();
                        throw new InvalidOperationException($"redis-server {version} is older than 7.0, whose replies EioSharp.Kv follows " +
                            "(scripts/setup.sh installs Debian's redis-server 7.x).");
                    }
                    return server;
                }
            }
            catch (Exception e) when ((e is SocketException or EndOfStreamException or IOException) && sw.Elapsed < TimeSpan.FromSeconds(15) && !server._process.HasExited)
            {
            }
            Thread.Sleep(50);
        }
    }

    public static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill();
                _process.WaitForExit(5000);
            }
        }
        catch (InvalidOperationException)
        {
        }
        _process.Dispose();
        _dir.Dispose();
    }
}

/// <summary>One redis-server and one EioSharp.Kv (AOF on, fsync everysec) shared by the tests of a class.</summary>
public sealed class DiffServers : IDisposable
{
    public DiffServers()
    {
        Redis = RedisServerProcess.Start();
        Kv = KvServerProcess.Start("--domains", "1");
    }

    public RedisServerProcess Redis { get; }

    public KvServerProcess Kv { get; }

    public void Dispose()
    {
        Redis.Dispose();
        Kv.Dispose();
    }
}

/// <summary>How two replies are compared.</summary>
/// <returns>Null when they agree, otherwise why not.</returns>
public delegate string? ReplyCheck(Resp redis, Resp kv);

/// <summary>One generated command, how to compare its replies, and commands (sent to both, replies not compared) that
/// bring the two servers back in step after a command whose effect is random.</summary>
public sealed record DiffCommand(string[] Args, ReplyCheck? Check = null, string[][]? After = null)
{
    public static implicit operator DiffCommand(string[] args) => new(args);

    public override string ToString() => string.Join(' ', Args.Select(a => a.Length == 0 || a.Contains(' ') ? "\"" + a + "\"" : a));
}

/// <summary>Checks for replies Redis does not make deterministic.</summary>
public static class Checks
{
    /// <summary>Same reply once both arrays are sorted (SMEMBERS-like order, HGETALL of a hashtable...).</summary>
    public static string? Unordered(Resp r, Resp k) => r.Sorted().ToString() == k.Sorted().ToString() ? null : "differ as multisets";

    /// <summary>Same pairs in any order (HGETALL on RESP2: a flat array of field, value).</summary>
    public static string? UnorderedPairs(Resp r, Resp k)
    {
        static string Pairs(Resp x) => x.Items is null ? x.ToString()
            : string.Join("|", x.Items.Chunk(2).Select(p => string.Join("=", p.Select(i => i.ToString()))).Order(StringComparer.Ordinal));
        return Pairs(r) == Pairs(k) ? null : "differ as sets of pairs";
    }

    /// <summary>Time replies read the two servers' clocks at slightly different moments (the commands reach redis-server
    /// first): TTL and EXPIRETIME may differ by one second, PTTL and PEXPIRETIME by 1.5 s, OBJECT IDLETIME by 2 s;
    /// negative codes (-1, -2) must be equal.</summary>
    public static bool ClockTolerance(string command, Resp r, Resp k)
    {
        long tolerance = command.ToUpperInvariant() switch
        {
            "TTL" or "EXPIRETIME" => 1,
            "PTTL" or "PEXPIRETIME" => 1500,
            "OBJECT" => 2,
            _ => -1,
        };
        if (tolerance < 0 || r.Kind != ':' || k.Kind != ':') return false;
        long a = long.Parse(r.Text!, CultureInfo.InvariantCulture), b = long.Parse(k.Text!, CultureInfo.InvariantCulture);
        return a >= 0 && b >= 0 && Math.Abs(a - b) <= tolerance;
    }

    /// <summary>Same kind and, for arrays, the same length (random picks: SRANDMEMBER with a count, SPOP...).</summary>
    public static string? SameShape(Resp r, Resp k)
    {
        if (r.Kind != k.Kind || r.IsNil != k.IsNil) return "different reply types";
        if (r.IsError && r.Text != k.Text) return "different errors";
        if ((r.Items?.Count ?? -1) != (k.Items?.Count ?? -1)) return "different lengths";
        return null;
    }
}

/// <summary>What a generator draws from: a random source and small pools of keys, fields and values, so that
/// commands collide on keys (and types: WRONGTYPE paths run).</summary>
public sealed class DiffContext(Random random)
{
    public Random Random { get; } = random;

    public string Key() => "k" + Random.Next(8);

    public string Pick(params string[] choices) => choices[Random.Next(choices.Length)];

    public bool Chance(double p) => Random.NextDouble() < p;

    public int Int(int minInclusive, int maxExclusive) => Random.Next(minInclusive, maxExclusive);

    /// <summary>A small value: mostly short words, sometimes integers, empty strings or longer strings.</summary>
    public string Value() => Random.Next(10) switch
    {
        0 => Random.Next(-100, 1000).ToString(CultureInfo.InvariantCulture),
        1 => "",
        2 => new string('x', Random.Next(40, 90)),
        _ => "v" + Random.Next(20),
    };

    /// <summary>A member or field name from a small pool (some integer-looking ones, for intsets).</summary>
    public string Member() => Random.Next(4) == 0 ? Random.Next(-5, 30).ToString(CultureInfo.InvariantCulture) : "m" + Random.Next(25);

    /// <summary>An integer argument, sometimes out of range or not a number.</summary>
    public string IntArg(int lo, int hi) => Random.Next(20) switch
    {
        0 => "x",
        1 => "9223372036854775808",
        _ => Random.Next(lo, hi + 1).ToString(CultureInfo.InvariantCulture),
    };

    /// <summary>A TTL argument (seconds, or milliseconds when <paramref name="milliseconds"/>) whose outcome does not depend
    /// on when each server sees the command: sometimes not a number or out of range, sometimes zero or negative (the key
    /// goes at once, or the command's error), otherwise far beyond any run (10,000 s or more). A TTL that could run out
    /// during a run made the servers disagree on a loaded machine (the commands reach redis-server first, and expired keys
    /// are counted by DBSIZE until they are reclaimed), so timed expiry is tested in the unit tests, not here.</summary>
    public string TtlArg(bool milliseconds = false) => Random.Next(20) switch
    {
        0 => "x",
        1 => "9223372036854775808",
        2 => Random.Next(-5, 1).ToString(CultureInfo.InvariantCulture),
        _ => (milliseconds ? Random.Next(10_000_000, 100_000_000) : Random.Next(10_000, 100_000)).ToString(CultureInfo.InvariantCulture),
    };

    /// <summary>A generic command that touches the key pool without caring for types (so families collide).</summary>
    public string[] Generic() => Random.Next(12) switch
    {
        0 => ["SET", Key(), Value()],
        1 => ["DEL", Key()],
        2 => ["EXPIRE", Key(), Random.Next(10_000, 100_000).ToString(CultureInfo.InvariantCulture)],
        3 => ["TYPE", Key()],
        4 => ["EXISTS", Key(), Key()],
        5 => ["RENAME", Key(), Key()],
        6 => ["PERSIST", Key()],
        7 => ["SELECT", Random.Next(3).ToString(CultureInfo.InvariantCulture)],
        8 => ["TTL", Key()],
        9 => ["GET", Key()],
        10 => ["COPY", Key(), Key()],
        _ => ["MOVE", Key(), Random.Next(3).ToString(CultureInfo.InvariantCulture)],
    };
}

/// <summary>Runs seeded random command sequences against redis-server and EioSharp.Kv and compares every reply and the
/// final state of every database.</summary>
public static class DiffRunner
{
    private const int Batch = 32; // commands pipelined at once

    /// <summary>The seeds to run: <c>KV_DIFF_SEEDS</c> (comma-separated) when set, else <paramref name="defaults"/>.</summary>
    public static IEnumerable<int> Seeds(params int[] defaults)
    {
        string? env = Environment.GetEnvironmentVariable("KV_DIFF_SEEDS");
        return string.IsNullOrWhiteSpace(env) ? defaults : env.Split(',').Select(s => int.Parse(s.Trim(), CultureInfo.InvariantCulture));
    }

    /// <summary>Sends <paramref name="count"/> commands from <paramref name="next"/> (seeded by <paramref name="seed"/>) to
    /// both servers after a FLUSHALL; fails with the seed, the command and both replies on the first difference, then
    /// compares the final state.</summary>
    /// <remarks>compareEncoding: also compare OBJECT ENCODING of every key at the end.</remarks>
    public static void Run(DiffServers servers, string family, int seed, int count, Func<DiffContext, DiffCommand> next, bool compareEncoding = false)
    {
        using var r = new RespConnection(servers.Redis.Port);
        using var k = new RespConnection(servers.Kv.Port);
        r.Call("FLUSHALL");
        k.Call("FLUSHALL");
        var ctx = new DiffContext(new Random(seed));
        var history = new Queue<string>();
        int sent = 0;
        while (sent < count)
        {
            var batch = new List<DiffCommand>(Batch);
            while (batch.Count < Batch && sent + batch.Count < count)
            {
                DiffCommand c = next(ctx);
                batch.Add(c);
                if (c.After is not null) break; // resynchronise before the next command
            }
            var args = batch.Select(c => c.Args).ToList();
            List<Resp> expected = r.Pipeline(args);
            List<Resp> actual = k.Pipeline(args);
            for (int i = 0; i < batch.Count; i++)
            {
                history.Enqueue(batch[i].ToString());
                if (history.Count > 12) history.Dequeue();
                string? why = batch[i].Check is { } check ? check(expected[i], actual[i])
                    : expected[i].ToString() == actual[i].ToString() ? null
                    : Checks.ClockTolerance(batch[i].Args[0], expected[i], actual[i]) ? null
                    : "replies differ";
                if (why is not null)
                {
                    Assert.Fail($"{family}: seed {seed} (replay: KV_DIFF_SEEDS={seed}), command #{sent + i + 1}: {batch[i]}\n" +
                        $"  {why}\n  redis-server: {expected[i]}\n  EioSharp.Kv:  {actual[i]}\n  last commands:\n    " + string.Join("\n    ", history));
                }
            }
            foreach (DiffCommand c in batch)
            {
                if (c.After is null) continue;
                r.Pipeline(c.After);
                k.Pipeline(c.After);
            }
            sent += batch.Count;
        }
        CompareState(r, k, $"{family}: seed {seed} (replay: KV_DIFF_SEEDS={seed})", compareEncoding);
    }

    /// <summary>Compares every key of databases 0..15: TYPE, TTL (within 2 s), contents, and optionally OBJECT ENCODING.</summary>
    public static void CompareState(RespConnection r, RespConnection k, string label, bool compareEncoding)
    {
        var diffs = new List<string>();
        for (int db = 0; db < 16; db++)
        {
            string dbText = db.ToString(CultureInfo.InvariantCulture);
            r.Call("SELECT", dbText);
            k.Call("SELECT", dbText);
            var rKeys = r.Call("KEYS", "*").Strings.Order(StringComparer.Ordinal).ToList();
            var kKeys = k.Call("KEYS", "*").Strings.Order(StringComparer.Ordinal).ToList();
            if (!rKeys.SequenceEqual(kKeys))
            {
                diffs.Add($"db{db} keys: redis-server [{string.Join(",", rKeys)}] EioSharp.Kv [{string.Join(",", kKeys)}]");
                continue;
            }
            foreach (string? key in rKeys)
            {
                foreach (string[] q in StateQueries(r, key!, compareEncoding))
                {
                    Resp a = r.Call(q), b = k.Call(q);
                    bool same = q[0] == "PTTL"
                        ? Math.Abs(long.Parse(a.Text!, CultureInfo.InvariantCulture) - long.Parse(b.Text!, CultureInfo.InvariantCulture)) <= 2000
                            && (a.Text == "-1") == (b.Text == "-1")
                        : q[0] is "HGETALL" or "SMEMBERS" ? Checks.UnorderedPairs(q[0] == "SMEMBERS" ? Pairs1(a) : a, q[0] == "SMEMBERS" ? Pairs1(b) : b) is null
                        : a.ToString() == b.ToString();
                    if (!same) diffs.Add($"db{db} {string.Join(' ', q)}: redis-server {a} EioSharp.Kv {b}");
                }
            }
        }
        r.Call("SELECT", "0");
        k.Call("SELECT", "0");
        Assert.True(diffs.Count == 0, $"{label}: final state differs:\n  " + string.Join("\n  ", diffs.Take(30)));

        static Resp Pairs1(Resp x) => x.Items is null ? x : x with { Items = [.. x.Items.SelectMany(i => new[] { i, i })] };
    }

    private static IEnumerable<string[]> StateQueries(RespConnection r, string key, bool compareEncoding)
    {
        string type = r.Call("TYPE", key).Text!;
        yield return ["TYPE", key];
        yield return ["PTTL", key];
        if (compareEncoding) yield return ["OBJECT", "ENCODING", key];
        switch (type)
        {
            case "string": yield return ["GET", key]; break;
            case "hash": yield return ["HGETALL", key]; break;
            case "list": yield return ["LRANGE", key, "0", "-1"]; break;
            case "set": yield return ["SMEMBERS", key]; break;
            case "zset": yield return ["ZRANGE", key, "0", "-1", "WITHSCORES"]; break;
            case "stream":
                yield return ["XRANGE", key, "-", "+"];
                yield return ["XINFO", "GROUPS", key];
                break;
        }
    }
}
