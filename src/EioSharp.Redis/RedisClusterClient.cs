using System.Globalization;
using System.Net;
using System.Text;
using EioSharp.Net;
using EioSharp.Time;

namespace EioSharp.Redis;

/// <summary>A Redis Cluster client: routes each command to the master of its key's hash slot, follows <c>MOVED</c> and
/// <c>ASK</c> redirections, and refuses multi-key commands whose keys are in different slots.</summary>
/// <remarks>
/// <para><b>Slot map</b>: read with <c>CLUSTER SLOTS</c> from any known node at the first command and after every
/// <c>MOVED</c>. Each master gets a <see cref="RedisClient"/> (shared pipelined connection plus pool).</para>
/// <para><b>Redirections</b>: <c>MOVED slot host:port</c> updates the map and retries on the new owner; <c>ASK slot host:port</c>
/// (a slot being migrated) sends <c>ASKING</c> and the command back to back on one exclusive connection of the target, without
/// changing the map. At most <see cref="MaxRedirections"/> per command.</para>
/// <para><b>Multi-key commands</b>: keys are found by the command's key positions (the common commands are known: DEL, EXISTS,
/// UNLINK, TOUCH, MGET, MSET, MSETNX, XREAD, XREADGROUP, EVAL/EVALSHA/FCALL, BLPOP/BRPOP/BZPOPMIN/BZPOPMAX, RENAME, SMOVE,
/// LMOVE, SUNION/SINTER/SDIFF(STORE), ...); if they hash to different slots the command fails with the server's <c>CROSSSLOT</c>
/// error before anything is sent. Use hash tags (<c>{user1}:a</c>, <c>{user1}:b</c>) to keep related keys together.</para>
/// <para><b>Thread safety</b>: use it from fibers of the domain that created it.</para>
/// </remarks>
public sealed class RedisClusterClient : IRedisCommands
{
    /// <summary>The number of hash slots of Redis Cluster.</summary>
    public const int SlotCount = 16384;

    /// <summary>The most redirections followed for one command.</summary>
    public const int MaxRedirections = 8;

    private readonly Switch _switch;
    private readonly NetworkCapability _net;
    private readonly MonoClock _clock;
    private readonly RedisOptions _options;
    private readonly List<EndPoint> _seeds;
    private readonly Dictionary<string, RedisClient> _nodes = new(StringComparer.Ordinal);
    private readonly string?[] _slots = new string?[SlotCount];
    private bool _mapped;

    private RedisClusterClient(Switch sw, NetworkCapability net, MonoClock clock, RedisOptions options, IEnumerable<EndPoint> seeds)
    {
        _switch = sw;
        _net = net;
        _clock = clock;
        _options = options;
        _seeds = seeds.ToList();
    }

    /// <summary><c>MOVED</c> redirections followed so far.</summary>
    public int MovedRedirections { get; private set; }

    /// <summary><c>ASK</c> redirections followed so far.</summary>
    public int AskRedirections { get; private set; }

    /// <summary>Creates a cluster client; nothing is connected until the first command.</summary>
    /// <param name="sw">Owns every connection.</param>
    /// <param name="env">Provides the network and the clock.</param>
    /// <param name="options">Connection settings for every node (<see cref="RedisOptions.EndPoint"/> is ignored; <see cref="RedisOptions.Database"/> must be 0).</param>
    /// <param name="seeds">Some nodes of the cluster.</param>
    /// <returns>The client.</returns>
    /// <exception cref="ArgumentException">No seed, or a database other than 0.</exception>
    public static RedisClusterClient Create(Switch sw, Stdenv env, RedisOptions options, params EndPoint[] seeds)
    {
        ArgumentNullException.ThrowIfNull(env);
        ArgumentNullException.ThrowIfNull(options);
        if (seeds.Length == 0 || options.Database != 0)
        {
            throw new ArgumentException("A cluster client needs at least one seed node, and database 0.");
        }

        return new RedisClusterClient(sw, env.Net, env.MonoClock, options, seeds);
    }

    /// <summary>The hash slot of a key: CRC16 (XMODEM) of the key, or of its hash tag (the text between the first <c>{</c> and the next <c>}</c>, if not empty), modulo 16384.</summary>
    /// <param name="key">The key's bytes.</param>
    /// <returns>The slot, 0..16383.</returns>
    public static int HashSlot(ReadOnlySpan<byte> key)
    {
        int open = key.IndexOf((byte)'{');
        if (open >= 0)
        {
            int close = key[(open + 1)..].IndexOf((byte)'}');
            if (close > 0)
            {
                key = key.Slice(open + 1, close);
            }
        }

        ushort crc = 0;
        foreach (byte b in key)
        {
            crc ^= (ushort)(b << 8);
            for (int i = 0; i < 8; i++)
            {
                crc = (crc & 0x8000) != 0 ? (ushort)((crc << 1) ^ 0x1021) : (ushort)(crc << 1);
            }
        }

        return crc % SlotCount;
    }

    /// <summary>The hash slot of a text key (UTF-8).</summary>
    /// <param name="key">The key.</param>
    /// <returns>The slot.</returns>
    public static int HashSlot(string key) => HashSlot(Encoding.UTF8.GetBytes(key));

    /// <summary>Runs a command on the master of its keys' slot, following redirections.</summary>
    /// <param name="args">The command and its arguments.</param>
    /// <returns>The reply.</returns>
    /// <exception cref="RedisErrorException">The server's error, or <c>CROSSSLOT</c> for keys in different slots, or too many redirections.</exception>
    /// <exception cref="RedisConnectionException">A node could not be reached.</exception>
    public async Task<RedisReply> ExecuteAsync(params object[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var bytes = Array.ConvertAll(args, RespCodec.ToBytes);
        int slot = SlotOf(bytes);
        if (!_mapped)
        {
            await RefreshAsync();
        }

        string? node = slot >= 0 ? _slots[slot] : null;
        node ??= _nodes.Keys.FirstOrDefault() ?? throw new RedisConnectionException("No cluster node is known.");
        bool asking = false;
        for (int hop = 0; ; hop++)
        {
            var client = Node(node);
            RedisReply reply;
            if (asking)
            {
                var replies = await client.UseConnectionAsync(c => c.PipelineAsync([["ASKING"], args]));
                reply = replies[1];
            }
            else
            {
                try
                {
                    return await client.ExecuteAsync(args);
                }
                catch (RedisErrorException e) when (e.Prefix is "MOVED" or "ASK")
                {
                    reply = RedisReply.ErrorReply(Encoding.UTF8.GetBytes(e.Message));
                }
            }

            if (!reply.IsError)
            {
                return reply;
            }

            string text = reply.Text!;
            string[] parts = text.Split(' ');
            if (hop >= MaxRedirections || parts.Length < 3 || parts[0] is not ("MOVED" or "ASK"))
            {
                throw new RedisErrorException(hop >= MaxRedirections ? $"Too many cluster redirections (last: {text})." : text);
            }

            node = parts[2];
            if (parts[0] == "MOVED")
            {
                MovedRedirections++;
                _slots[int.Parse(parts[1], CultureInfo.InvariantCulture)] = node;
                asking = false;
                _mapped = false; // the whole map is refreshed before the next command
            }
            else
            {
                AskRedirections++;
                asking = true;
            }
        }
    }

    /// <summary>Sends several commands, each to the master of its keys' slot: one pipeline (one write) per master, the masters one
    /// after the other; a command answered with <c>MOVED</c>/<c>ASK</c> is then run again alone, following the redirection.</summary>
    /// <param name="commands">The commands.</param>
    /// <returns>The replies in the order of <paramref name="commands"/>; error replies (also <c>CROSSSLOT</c>) are returned, not thrown.</returns>
    /// <exception cref="RedisConnectionException">A node could not be reached.</exception>
    public async Task<RedisReply[]> PipelineAsync(IReadOnlyList<object[]> commands)
    {
        ArgumentNullException.ThrowIfNull(commands);
        if (!_mapped)
        {
            await RefreshAsync();
        }

        var replies = new RedisReply[commands.Count];
        var byNode = new Dictionary<string, List<int>>(StringComparer.Ordinal);
        for (int i = 0; i < commands.Count; i++)
        {
            int slot;
            try
            {
                slot = SlotOf(Array.ConvertAll(commands[i], RespCodec.ToBytes));
            }
            catch (RedisErrorException e)
            {
                replies[i] = RedisReply.ErrorReply(Encoding.UTF8.GetBytes(e.Message));
                continue;
            }

            string node = (slot >= 0 ? _slots[slot] : null) ?? _nodes.Keys.FirstOrDefault() ?? Name(_seeds[0]);
            (byNode.TryGetValue(node, out var list) ? list : byNode[node] = []).Add(i);
        }

        foreach (var (node, indexes) in byNode)
        {
            var got = await Node(node).PipelineAsync(indexes.Select(i => commands[i]).ToArray());
            for (int j = 0; j < indexes.Count; j++)
            {
                replies[indexes[j]] = got[j];
            }
        }

        for (int i = 0; i < replies.Length; i++)
        {
            if (replies[i].IsError && replies[i].Text is { } text && (text.StartsWith("MOVED ", StringComparison.Ordinal) || text.StartsWith("ASK ", StringComparison.Ordinal)))
            {
                try
                {
                    replies[i] = await ExecuteAsync(commands[i]);
                }
                catch (RedisErrorException e)
                {
                    replies[i] = RedisReply.ErrorReply(Encoding.UTF8.GetBytes(e.Message));
                }
            }
        }

        return replies;
    }

    /// <summary>Reads the slot map again (<c>CLUSTER SLOTS</c>) from the first node that answers.</summary>
    /// <returns>A task that completes when the map is updated.</returns>
    /// <exception cref="RedisConnectionException">No node answered.</exception>
    public async Task RefreshAsync()
    {
        var candidates = _nodes.Keys.Concat(_seeds.Select(Name)).Distinct().ToList();
        Exception? last = null;
        foreach (string n in candidates)
        {
            try
            {
                var reply = await Node(n).ExecuteAsync("CLUSTER", "SLOTS");
                foreach (var range in reply.Elements)
                {
                    int start = (int)range[0].Integer, end = (int)range[1].Integer;
                    var master = range[2];
                    string host = master[0].Text is { Length: > 0 } h ? h : "127.0.0.1";
                    string name = host + ":" + master[1].Integer.ToString(CultureInfo.InvariantCulture);
                    for (int s = start; s <= end; s++)
                    {
                        _slots[s] = name;
                    }
                }

                _mapped = true;
                return;
            }
            catch (Exception e) when (e is RedisConnectionException or RedisErrorException)
            {
                last = e;
            }
        }

        throw new RedisConnectionException("No cluster node answered CLUSTER SLOTS.", last);
    }

    private static string Name(EndPoint ep) => ep is IPEndPoint ip ? ip.Address + ":" + ip.Port.ToString(CultureInfo.InvariantCulture) : ep.ToString()!;

    private RedisClient Node(string name)
    {
        if (!_nodes.TryGetValue(name, out var client))
        {
            int colon = name.LastIndexOf(':');
            var ep = new IPEndPoint(IPAddress.Parse(name[..colon]), int.Parse(name[(colon + 1)..], CultureInfo.InvariantCulture));
            client = RedisClient.Create(_switch, _net, _clock, _options with { EndPoint = ep });
            _nodes[name] = client;
        }

        return client;
    }

    /// <summary>The one slot of the command's keys; -1 for a command without keys.</summary>
    /// <exception cref="RedisErrorException">The keys hash to different slots (<c>CROSSSLOT</c>).</exception>
    internal static int SlotOf(byte[][] args)
    {
        int slot = -1;
        foreach (int i in KeyPositions(args))
        {
            int s = HashSlot(args[i]);
            if (slot >= 0 && s != slot)
            {
                throw new RedisErrorException("CROSSSLOT Keys in request don't hash to the same slot");
            }

            slot = s;
        }

        return slot;
    }

    private static IEnumerable<int> KeyPositions(byte[][] args)
    {
        string name = Encoding.UTF8.GetString(args[0]).ToUpperInvariant();
        int n = args.Length;
        switch (name)
        {
            case "DEL" or "EXISTS" or "UNLINK" or "TOUCH" or "MGET" or "SUNION" or "SINTER" or "SDIFF" or "WATCH" or "PFCOUNT" or "PFMERGE"
                or "SUNIONSTORE" or "SINTERSTORE" or "SDIFFSTORE" or "RENAME" or "RENAMENX" or "SMOVE" or "LMOVE" or "RPOPLPUSH" or "BLMOVE"
                or "BRPOPLPUSH" or "COPY":
                int last = name is "SMOVE" or "LMOVE" or "RPOPLPUSH" or "BLMOVE" or "BRPOPLPUSH" or "COPY" or "RENAME" or "RENAMENX" ? Math.Min(n, 3) : n;
                for (int i = 1; i < last; i++)
                {
                    yield return i;
                }

                break;
            case "MSET" or "MSETNX":
                for (int i = 1; i < n; i += 2)
                {
                    yield return i;
                }

                break;
            case "BLPOP" or "BRPOP" or "BZPOPMIN" or "BZPOPMAX":
                for (int i = 1; i < n - 1; i++)
                {
                    yield return i;
                }

                break;
            case "EVAL" or "EVALSHA" or "EVAL_RO" or "EVALSHA_RO" or "FCALL" or "FCALL_RO":
                int keys = n > 2 ? int.Parse(Encoding.ASCII.GetString(args[2]), CultureInfo.InvariantCulture) : 0;
                for (int i = 3; i < 3 + keys && i < n; i++)
                {
                    yield return i;
                }

                break;
            case "XREAD" or "XREADGROUP":
                int streams = Array.FindIndex(args, a => Encoding.ASCII.GetString(a).Equals("STREAMS", StringComparison.OrdinalIgnoreCase));
                if (streams > 0)
                {
                    int count = (n - streams - 1) / 2;
                    for (int i = streams + 1; i <= streams + count; i++)
                    {
                        yield return i;
                    }
                }

                break;
            case "PING" or "ECHO" or "INFO" or "CLUSTER" or "CLIENT" or "CONFIG" or "DBSIZE" or "SCAN" or "KEYS" or "FLUSHALL" or "FLUSHDB"
                or "PUBLISH" or "SUBSCRIBE" or "SCRIPT" or "FUNCTION" or "TIME" or "COMMAND" or "HELLO" or "AUTH" or "SELECT" or "MULTI" or "EXEC":
                break;
            case "XGROUP" or "XINFO" or "OBJECT" or "MEMORY":
                if (n > 2)
                {
                    yield return 2;
                }

                break;
            default:
                if (n > 1)
                {
                    yield return 1;
                }

                break;
        }
    }
}
