using System.Buffers;
using EioSharp.Kv;

namespace EioSharp.Kv.Tests;

public class KvConnectionStateTests
{
    private sealed class Conn
    {
        public KvConnectionState State { get; }
        public KvServerStats Stats { get; } = new() { StartTimeUnixMs = 1000 };
        private readonly ArrayBufferWriter<byte> _buffer = new();
        public RespWriter Writer { get; }
        public KvDispatch LastDispatch { get; private set; }

        public Conn(KvServerConfig? config = null)
        {
            State = new KvConnectionState(42, config ?? new KvServerConfig(), Stats);
            Writer = new RespWriter(_buffer);
        }

        public string Run(params string[] args)
        {
            _buffer.ResetWrittenCount();
            LastDispatch = State.Process(KvCommand.Create(args), Writer, 61_000);
            return Resp.Text(_buffer.WrittenSpan);
        }
    }

    [Fact]
    public void Ping_echo_quit_select()
    {
        var c = new Conn();
        Assert.Equal("+PONG\r\n", c.Run("PING"));
        Assert.Equal("$2\r\nhi\r\n", c.Run("PING", "hi"));
        Assert.Equal("-ERR wrong number of arguments for 'ping' command\r\n", c.Run("PING", "a", "b"));
        Assert.Equal("$3\r\nabc\r\n", c.Run("ECHO", "abc"));
        Assert.Equal("-ERR wrong number of arguments for 'echo' command\r\n", c.Run("ECHO"));
        Assert.Equal("", c.Run("SELECT", "1")); // runs in the store (it changes the database of the commands after it)
        Assert.Equal("+OK\r\n", c.Run("QUIT"));
        Assert.Equal(KvDispatch.Close, c.LastDispatch);
    }

    [Fact]
    public void Routing_store_commands_and_unknown()
    {
        var c = new Conn();
        Assert.Equal("", c.Run("GET", "a"));
        Assert.Equal(KvDispatch.Store, c.LastDispatch);
        Assert.Equal("-ERR wrong number of arguments for 'get' command\r\n", c.Run("GET"));
        Assert.Equal(KvDispatch.Replied, c.LastDispatch);
        Assert.Equal("-ERR unknown command 'foo', with args beginning with: 'a' 'b' \r\n", c.Run("foo", "a", "b"));
        Assert.Equal("-ERR unknown command 'foo', with args beginning with: \r\n", c.Run("foo"));
        string longArg = new('x', 200);
        Assert.Equal($"-ERR unknown command 'foo', with args beginning with: '{new string('x', 128)}' \r\n", c.Run("foo", longArg, "b"));
    }

    [Fact]
    public void Auth_with_requirepass()
    {
        var c = new Conn(new KvServerConfig { RequirePass = "secret" });
        Assert.Equal("-NOAUTH Authentication required.\r\n", c.Run("GET", "a"));
        Assert.Equal("-NOAUTH Authentication required.\r\n", c.Run("PING"));
        Assert.Equal("-ERR unknown command 'nope', with args beginning with: \r\n", c.Run("nope"));
        Assert.Equal("-WRONGPASS invalid username-password pair or user is disabled.\r\n", c.Run("AUTH", "wrong"));
        Assert.Equal("-WRONGPASS invalid username-password pair or user is disabled.\r\n", c.Run("AUTH", "bob", "secret"));
        Assert.Equal("-ERR syntax error\r\n", c.Run("AUTH", "a", "b", "c"));
        Assert.StartsWith("-NOAUTH HELLO must be called", c.Run("HELLO", "3"));
        Assert.Equal("+OK\r\n", c.Run("AUTH", "secret"));
        Assert.True(c.State.IsAuthenticated);
        Assert.Equal("+PONG\r\n", c.Run("PING"));
        Assert.Equal(KvDispatch.Store, (c.Run("GET", "a"), c.LastDispatch).Item2);

        var d = new Conn(new KvServerConfig { RequirePass = "secret" });
        Assert.Equal("+OK\r\n", d.Run("AUTH", "default", "secret"));

        var e = new Conn(new KvServerConfig { RequirePass = "secret" });
        var hello = (Dictionary<string, object?>)RespReplyParser.Parse(e.Run("HELLO", "3", "AUTH", "default", "secret", "SETNAME", "app"))!;
        Assert.Equal(3L, hello["proto"]);
        Assert.Equal("app", e.State.Name);
        Assert.True(e.State.IsAuthenticated);
    }

    [Fact]
    public void Auth_without_requirepass()
    {
        var c = new Conn();
        Assert.StartsWith("-ERR AUTH <password> called without any password configured", c.Run("AUTH", "x"));
        Assert.Equal("+OK\r\n", c.Run("AUTH", "default", "anything"));
    }

    [Fact]
    public void Hello_switches_protocol()
    {
        var c = new Conn();
        var resp2 = (List<object?>)RespReplyParser.Parse(c.Run("HELLO"))!;
        Assert.Equal(["server", "redis", "version", "7.2.0", "proto", 2L, "id", 42L, "mode", "standalone", "role", "master", "modules"], resp2.Take(13));
        string r3 = c.Run("HELLO", "3");
        Assert.StartsWith("%7\r\n", r3);
        var map = (Dictionary<string, object?>)RespReplyParser.Parse(r3)!;
        Assert.Equal(3L, map["proto"]);
        Assert.Equal(3, c.State.Protocol);
        Assert.Equal(3, c.Writer.Protocol);
        Assert.Equal("-NOPROTO unsupported protocol version\r\n", c.Run("HELLO", "4"));
        Assert.Equal("-ERR Protocol version is not an integer or out of range\r\n", c.Run("HELLO", "x"));
        Assert.Equal("-ERR Syntax error in HELLO option 'BOGUS'\r\n", c.Run("HELLO", "2", "BOGUS"));
        Assert.Equal("-ERR Syntax error in HELLO option 'AUTH'\r\n", c.Run("HELLO", "2", "AUTH", "onlyuser"));
        Assert.StartsWith("*14\r\n", c.Run("HELLO", "2"));
    }

    [Fact]
    public void Client_subcommands()
    {
        var c = new Conn();
        Assert.Equal(":42\r\n", c.Run("CLIENT", "ID"));
        Assert.Equal("$-1\r\n", c.Run("CLIENT", "GETNAME"));
        Assert.Equal("+OK\r\n", c.Run("CLIENT", "SETNAME", "worker-1"));
        Assert.Equal("$8\r\nworker-1\r\n", c.Run("client", "getname"));
        Assert.Equal("-ERR Client names cannot contain spaces, newlines or special characters.\r\n", c.Run("CLIENT", "SETNAME", "a b"));
        Assert.Equal("+OK\r\n", c.Run("CLIENT", "SETINFO", "LIB-NAME", "redis-py"));
        Assert.Equal("+OK\r\n", c.Run("CLIENT", "SETINFO", "lib-ver", "5.0"));
        Assert.Equal("-ERR Unrecognized option 'foo'\r\n", c.Run("CLIENT", "SETINFO", "foo", "x"));
        Assert.Equal("-ERR wrong number of arguments for 'client|setname' command\r\n", c.Run("CLIENT", "SETNAME"));
        Assert.Equal("-ERR unknown subcommand 'nope'. Try CLIENT HELP.\r\n", c.Run("CLIENT", "nope"));
        Assert.Contains("lib-name=redis-py", c.Run("CLIENT", "INFO"));
        Assert.Equal("-ERR wrong number of arguments for 'client' command\r\n", c.Run("CLIENT"));
    }

    /// <summary>CLIENT SETINFO as redis 7.2's clientSetinfoCommand: the value must be printable ASCII without spaces (the
    /// error names the attribute as sent), an empty value clears it, both show in CLIENT INFO, and RESET keeps them (they
    /// describe the library behind the connection: 7.2's clearClientConnectionState leaves lib_name and lib_ver).</summary>
    [Fact]
    public void Client_setinfo_validates_shows_and_survives_reset_as_redis_7_2()
    {
        var c = new TwoClients().A; // with a store: RESET runs there
        Assert.Equal("-ERR LIB-NAME cannot contain spaces, newlines or special characters.\r\n", c.Run("CLIENT", "SETINFO", "LIB-NAME", "redis py"));
        Assert.Equal("-ERR lib-ver cannot contain spaces, newlines or special characters.\r\n", c.Run("CLIENT", "SETINFO", "lib-ver", "1.0\n"));
        Assert.Equal("-ERR Lib-Name cannot contain spaces, newlines or special characters.\r\n", c.Run("CLIENT", "SETINFO", "Lib-Name", "caf\u00e9"));
        Assert.Equal("-ERR lib-name cannot contain spaces, newlines or special characters.\r\n", c.Run("CLIENT", "SETINFO", "lib-name", "a\tb"));
        Assert.Equal("-ERR wrong number of arguments for 'client|setinfo' command\r\n", c.Run("CLIENT", "SETINFO", "lib-name"));
        Assert.EndsWith("lib-name= lib-ver=\n\r\n", c.Run("CLIENT", "INFO"));
        Assert.Equal("+OK\r\n", c.Run("CLIENT", "SETINFO", "lib-name", "jedis(spring)"));
        Assert.Equal("+OK\r\n", c.Run("CLIENT", "SETINFO", "LIB-VER", "5.1.0~beta"));
        Assert.EndsWith("lib-name=jedis(spring) lib-ver=5.1.0~beta\n\r\n", c.Run("CLIENT", "INFO"));
        Assert.Equal("+RESET\r\n", c.Run("RESET"));
        Assert.EndsWith("lib-name=jedis(spring) lib-ver=5.1.0~beta\n\r\n", c.Run("CLIENT", "INFO"));
        Assert.Equal("+OK\r\n", c.Run("CLIENT", "SETINFO", "lib-ver", ""));
        Assert.EndsWith("lib-name=jedis(spring) lib-ver=\n\r\n", c.Run("CLIENT", "INFO"));
    }

    [Fact]
    public void Command_and_config()
    {
        var c = new Conn();
        Assert.Equal($":{KvCommandTable.All.Count}\r\n", c.Run("COMMAND", "COUNT"));
        string docs = c.Run("COMMAND", "DOCS"); // Redis 7.0's docs of every implemented command (RESP2: a flat map)
        Assert.StartsWith("*" + (2 * KvCommandTable.All.Count).ToString(System.Globalization.CultureInfo.InvariantCulture) + "\r\n$4\r\nping\r\n", docs);
        Assert.Contains("$7\r\nsummary\r\n", docs);
        var all = (List<object?>)RespReplyParser.Parse(c.Run("COMMAND"))!;
        Assert.Equal(KvCommandTable.All.Count, all.Count);
        var info = (List<object?>)RespReplyParser.Parse(c.Run("COMMAND", "INFO", "get", "nope"))!;
        Assert.Equal("get", ((List<object?>)info[0]!)[0]);
        Assert.Equal(2L, ((List<object?>)info[0]!)[1]);
        Assert.Null(info[1]);
        Assert.Equal("-ERR unknown subcommand 'x'. Try COMMAND HELP.\r\n", c.Run("COMMAND", "x"));

        Assert.Equal("*2\r\n$4\r\nsave\r\n$0\r\n\r\n", c.Run("CONFIG", "GET", "save"));
        Assert.Equal("*2\r\n$10\r\nappendonly\r\n$3\r\nyes\r\n", c.Run("CONFIG", "GET", "appendonly"));
        var several = (List<object?>)RespReplyParser.Parse(c.Run("CONFIG", "GET", "append*", "PORT"))!;
        Assert.Contains("appendfsync", several);
        Assert.Contains("everysec", several);
        Assert.Contains("6379", several);
        Assert.Equal("*0\r\n", c.Run("CONFIG", "GET", "nothing"));
        Assert.Equal("-ERR wrong number of arguments for 'config|get' command\r\n", c.Run("CONFIG", "GET"));
        Assert.Equal("-ERR unknown subcommand 'x'. Try CONFIG HELP.\r\n", c.Run("CONFIG", "x"));
        c.Run("HELLO", "3");
        Assert.Equal("%1\r\n$4\r\nsave\r\n$0\r\n\r\n", c.Run("CONFIG", "GET", "save"));
    }

    [Fact]
    public void Info_sections()
    {
        var c = new Conn(new KvServerConfig { Backend = "mock" });
        c.Stats.OnClientConnected();
        c.Stats.OnCommandsProcessed(5);
        c.Stats.Keys = 3;
        c.Stats.ExpiringKeys = 1;
        c.Stats.KeysPerDatabase = [(3, 1), (0, 0), (2, 0)];
        string info = (string)RespReplyParser.Parse(c.Run("INFO"))!;
        Assert.StartsWith("# Server\r\nredis_version:7.2.0\r\n", info);
        foreach (string section in new[] { "# Clients", "# Memory", "# Persistence", "# Stats", "# Keyspace" })
            Assert.Contains("\r\n\r\n" + section + "\r\n", info);
        Assert.Contains("uptime_in_seconds:60\r\n", info);
        Assert.Contains("connected_clients:1\r\n", info);
        Assert.Contains("total_commands_processed:5\r\n", info);
        Assert.Contains("db0:keys=3,expires=1,avg_ttl=0\r\ndb2:keys=2,expires=0,avg_ttl=0\r\n", info);
        Assert.DoesNotContain("db1:", info);
        Assert.Contains("aof_enabled:1\r\n", info);
        Assert.Contains("eio_backend:mock\r\n", info);
        string keyspace = (string)RespReplyParser.Parse(c.Run("INFO", "KEYSPACE"))!;
        Assert.Equal("# Keyspace\r\ndb0:keys=3,expires=1,avg_ttl=0\r\ndb2:keys=2,expires=0,avg_ttl=0\r\n", keyspace);
        Assert.Equal("$0\r\n\r\n", c.Run("INFO", "nosuchsection"));

        // The section headers in redis-server 7.0.15's order (INFO; INFO everything), Modules empty and Cluster disabled.
        static string Headers(string text) => string.Join(' ', text.Split("\r\n").Where(l => l.StartsWith('#')));
        Assert.Equal("# Server # Clients # Memory # Persistence # Stats # Replication # CPU # Modules # Errorstats # Cluster # Keyspace", Headers(info));
        Assert.Equal("# Server # Clients # Memory # Persistence # Stats # Replication # CPU # Modules # Commandstats # Errorstats # Latencystats # Cluster # Keyspace",
            Headers((string)RespReplyParser.Parse(c.Run("INFO", "everything"))!));
        Assert.Equal("# Cluster\r\ncluster_enabled:0\r\n", (string)RespReplyParser.Parse(c.Run("INFO", "cluster"))!);
        Assert.Equal("# Modules\r\n", (string)RespReplyParser.Parse(c.Run("INFO", "modules"))!);
    }

    [Fact]
    public void Protocol_error_reply()
    {
        var buffer = new ArrayBufferWriter<byte>();
        KvConnectionState.WriteProtocolError(new RespWriter(buffer), new RespProtocolException("Protocol error: invalid bulk length"));
        Assert.Equal("-ERR Protocol error: invalid bulk length\r\n", Resp.Text(buffer.WrittenSpan));
    }
}
