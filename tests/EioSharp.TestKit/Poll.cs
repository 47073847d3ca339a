using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace EioSharp.TestKit;

/// <summary>Polls for a condition instead of sleeping a fixed time (the machine may be loaded).</summary>
public static class Poll
{
    /// <summary>Polls every 20 ms until <paramref name="condition"/> holds or <paramref name="timeout"/> passes.</summary>
    /// <param name="condition">What to wait for.</param>
    /// <param name="timeout">How long to poll.</param>
    /// <returns>Whether the condition held.</returns>
    public static async Task<bool> UntilAsync(Func<bool> condition, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > timeout)
            {
                return condition();
            }

            await Task.Delay(20);
        }

        return true;
    }

    /// <summary>Blocking form of <see cref="UntilAsync"/>.</summary>
    /// <param name="condition">What to wait for.</param>
    /// <param name="timeout">How long to poll.</param>
    /// <returns>Whether the condition held.</returns>
    public static bool Until(Func<bool> condition, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > timeout)
            {
                return condition();
            }

            Thread.Sleep(20);
        }

        return true;
    }
}

/// <summary>Free loopback ports, for servers that cannot be told to use port 0.</summary>
public static class FreePort
{
    /// <summary>A TCP port on 127.0.0.1 that was free a moment ago.</summary>
    /// <returns>The port.</returns>
    public static int Tcp()
    {
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)probe.LocalEndPoint!).Port;
    }

    /// <summary>A UDP port on 127.0.0.1 that was free a moment ago.</summary>
    /// <returns>The port.</returns>
    public static int Udp()
    {
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)probe.LocalEndPoint!).Port;
    }
}
