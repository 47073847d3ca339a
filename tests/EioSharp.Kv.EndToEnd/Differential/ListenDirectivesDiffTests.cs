using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace EioSharp.Kv.EndToEnd.Differential;

/// <summary>Issue 13, the last gap (h57): CONFIG SET port and CONFIG SET bind change the listening sockets at run time as
/// redis-server 7.0.15 does. The same script runs against both servers and the transcripts (port numbers replaced by
/// their role) must be equal: moving to a free port (the old port refuses, the new one accepts, the connection that sent
/// the command still answers), a port in use (Redis's error, the old port still serving), bind to an address that is
/// not local, a bad address, a duplicate address, optional addresses, port 0, and CONFIG GET / INFO tcp_port after each.</summary>
public sealed class ListenDirectivesDiffTests
{
    private static bool Refused(int port)
    {
        using var c = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            c.Connect(new IPEndPoint(IPAddress.Loopback, port));
            return false;
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
        {
            return true;
        }
    }

    /// <summary>PING on a new connection to <paramref name="port"/>, or "refused".</summary>
    private static string Fresh(int port)
    {
        if (Refused(port)) return "refused";
        using var c = new RespConnection(port);
        return c.Call("PING").ToString();
    }

    private static string TcpPort(RespConnection c) =>
        c.Call("INFO", "server").Text!.Split("\r\n").Single(l => l.StartsWith("tcp_port:", StringComparison.Ordinal));

    private static List<string> Script(int startPort)
    {
        var log = new List<string>();
        int newPort = RedisServerProcess.FreePort();
        using var busy = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        busy.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        busy.Listen();
        int busyPort = ((IPEndPoint)busy.LocalEndPoint!).Port;
        string Named(string s) => s.Replace(startPort.ToString(CultureInfo.InvariantCulture), "START", StringComparison.Ordinal)
            .Replace(newPort.ToString(CultureInfo.InvariantCulture), "NEW", StringComparison.Ordinal)
            .Replace(busyPort.ToString(CultureInfo.InvariantCulture), "BUSY", StringComparison.Ordinal);

        using var c = new RespConnection(startPort);
        void Do(params string[] command) => log.Add(Named($"{string.Join(' ', command)} -> {c.Call(command)}"));
        void Check(string what, string value) => log.Add(Named($"{what}: {value}"));

        Do("CONFIG", "SET", "port", newPort.ToString(CultureInfo.InvariantCulture));
        Check("start port", Fresh(startPort));
        Check("new port", Fresh(newPort));
        Do("PING");
        Do("CONFIG", "GET", "port");
        Check("info", TcpPort(c));

        Do("CONFIG", "SET", "port", busyPort.ToString(CultureInfo.InvariantCulture));
        Do("CONFIG", "SET", "maxmemory", "5mb", "port", busyPort.ToString(CultureInfo.InvariantCulture));
        Do("CONFIG", "GET", "maxmemory");
        Do("CONFIG", "GET", "port");
        Check("new port after port in use", Fresh(newPort));
        Do("PING");

        Do("CONFIG", "SET", "bind", "10.1.2.3");
        Do("CONFIG", "SET", "bind", "notanaddress");
        Do("CONFIG", "SET", "bind", "127.0.0.1 127.0.0.1");
        Do("CONFIG", "SET", "bind", "127.0.0.1", "port", busyPort.ToString(CultureInfo.InvariantCulture));
        Do("CONFIG", "SET", "port", busyPort.ToString(CultureInfo.InvariantCulture), "bind", "127.0.0.1");
        Do("CONFIG", "GET", "bind");
        Check("new port after bad binds", Fresh(newPort));
        Do("PING");
        Do("CONFIG", "SET", "bind", "-10.1.2.3 127.0.0.1");
        Do("CONFIG", "GET", "bind");
        Check("new port after optional bind", Fresh(newPort));
        Do("CONFIG", "SET", "bind", "127.0.0.1", "port", startPort.ToString(CultureInfo.InvariantCulture));
        Check("start port again", Fresh(startPort));
        Check("new port after moving back", Fresh(newPort));
        Do("CONFIG", "GET", "port");
        Do("CONFIG", "SET", "port", startPort.ToString(CultureInfo.InvariantCulture)); // unchanged: nothing rebinds
        Check("start port unchanged", Fresh(startPort));

        Do("CONFIG", "SET", "port", "0");
        Check("start port with port 0", Fresh(startPort));
        Do("CONFIG", "GET", "port");
        Check("info", TcpPort(c));
        Do("PING");
        Do("CONFIG", "SET", "port", "65536");
        Do("CONFIG", "SET", "port", startPort.ToString(CultureInfo.InvariantCulture));
        Check("start port after port 0", Fresh(startPort));
        Do("PING");
        return log;
    }

    [Fact]
    public void Config_set_port_and_bind_move_the_listeners_as_redis()
    {
        using var redis = RedisServerProcess.Start();
        using var kv = KvServerProcess.Start();
        List<string> expected = Script(redis.Port), actual = Script(kv.Port);
        Assert.True(expected.SequenceEqual(actual),
            "redis-server:\n  " + string.Join("\n  ", expected) + "\nEioSharp.Kv:\n  " + string.Join("\n  ", actual));
        Assert.Contains("new port: +PONG", expected); // the script did move the server
        Assert.Contains("start port: refused", expected);
    }
}
