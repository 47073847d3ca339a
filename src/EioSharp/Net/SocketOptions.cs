using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace EioSharp.Net;

/// <summary>A socket option that can be read or set on a socket: one of the values in <see cref="SocketOptions"/>.</summary>
/// <remarks>Eio: <c>Eio.Net.Sockopt.t</c> (and <c>Eio_unix.Net.Sockopt</c>). The untyped base of
/// <see cref="SocketOption{T}"/>; options are compared by reference.</remarks>
public abstract class SocketOption
{
    private protected SocketOption(string name, int linuxLevel, int linuxName, SocketOptionLevel level, SocketOptionName? dotnetName)
    {
        Name = name;
        LinuxLevel = linuxLevel;
        LinuxName = linuxName;
        Level = level;
        DotNetName = dotnetName;
    }

    /// <summary>The C name of the option (for example <c>SO_KEEPALIVE</c>).</summary>
    public string Name { get; }

    internal int LinuxLevel { get; }

    internal int LinuxName { get; }

    internal SocketOptionLevel Level { get; }

    /// <summary>The .NET name, or null when .NET has none (SO_REUSEPORT: Linux numbers are used).</summary>
    internal SocketOptionName? DotNetName { get; }

    /// <summary>True for SO_LINGER, whose value is a (on, seconds) pair.</summary>
    internal virtual bool IsLinger => false;

    /// <inheritdoc/>
    public override string ToString() => Name;
}

/// <summary>A socket option whose value has type <typeparamref name="T"/>.</summary>
/// <typeparam name="T">The value type: <see cref="bool"/>, <see cref="int"/> (bytes or hops), <see cref="TimeSpan"/>
/// (whole seconds) or <c>TimeSpan?</c> for SO_LINGER (null: off).</typeparam>
/// <remarks>Eio: <c>'a Eio.Net.Sockopt.t</c>.</remarks>
public sealed class SocketOption<T> : SocketOption
{
    private readonly Func<T, (int Value, int Extra)> _encode;
    private readonly Func<(int Value, int Extra), T> _decode;

    internal SocketOption(string name, int linuxLevel, int linuxName, SocketOptionLevel level, SocketOptionName? dotnetName,
        Func<T, (int, int)> encode, Func<(int, int), T> decode, bool linger = false)
        : base(name, linuxLevel, linuxName, level, dotnetName)
    {
        _encode = encode;
        _decode = decode;
        IsLingerOption = linger;
    }

    private bool IsLingerOption { get; }

    internal override bool IsLinger => IsLingerOption;

    /// <summary>Pairs this option with a value, for the <c>options</c> parameter of
    /// <see cref="NetworkCapability.Listen"/>, <see cref="NetworkCapability.ConnectAsync(Switch, System.Net.EndPoint, IReadOnlyList{SocketOptionSetting}?)"/>
    /// and <see cref="NetworkCapability.OpenDatagram"/>.</summary>
    /// <param name="value">The value.</param>
    /// <returns>The setting.</returns>
    /// <exception cref="ArgumentOutOfRangeException">The value is out of the option's range (negative sizes or times).</exception>
    public SocketOptionSetting With(T value)
    {
        var (v, e) = _encode(value);
        return new SocketOptionSetting(this, v, e);
    }

    internal (int Value, int Extra) Encode(T value) => _encode(value);

    internal T Decode((int Value, int Extra) raw) => _decode(raw);
}

/// <summary>An option with its value, applied when a socket is created (before bind or connect).</summary>
/// <remarks>Made by <see cref="SocketOption{T}.With(T)"/>.</remarks>
public readonly struct SocketOptionSetting
{
    internal SocketOptionSetting(SocketOption option, int value, int extra)
    {
        Option = option;
        Value = value;
        Extra = extra;
    }

    /// <summary>The option.</summary>
    public SocketOption Option { get; }

    internal int Value { get; }

    internal int Extra { get; }

    /// <inheritdoc/>
    public override string ToString() => Option.IsLinger ? $"{Option.Name}={(Value != 0 ? Extra + "s" : "off")}" : $"{Option.Name}={Value}";
}

/// <summary>The common socket options (Eio's list): read them with <c>GetOption</c> and set them with <c>SetOption</c> on
/// <see cref="StreamSocket"/>, <see cref="ListeningSocket"/> and <see cref="DatagramSocket"/>, or pass
/// <c>option.With(value)</c> when creating a socket.</summary>
/// <remarks>
/// Eio: <c>Eio.Net.Sockopt</c> / <c>Eio_unix.Net.Sockopt</c> (<c>SO_KEEPALIVE</c>, <c>TCP_KEEPIDLE</c>, ...). The kernel may
/// adjust a value: Linux doubles <c>SO_RCVBUF</c>/<c>SO_SNDBUF</c> (for bookkeeping) and clamps them to its limits, so read
/// back what you need to know. Times are whole seconds (the kernel's unit). Options that do not apply to a socket (TCP
/// options on a UDP or Unix socket, <c>IPV6_V6ONLY</c> on IPv4) fail with <see cref="NetException"/>.
/// <para>On the Portable backend off Linux, <see cref="ReusePort"/> throws <see cref="PlatformNotSupportedException"/>;
/// the others map to .NET's <see cref="SocketOptionName"/>.</para>
/// </remarks>
public static class SocketOptions
{
    private static readonly Func<bool, (int, int)> EncodeBool = b => (b ? 1 : 0, 0);
    private static readonly Func<(int, int), bool> DecodeBool = r => r.Item1 != 0;
    private static readonly Func<(int, int), int> DecodeInt = r => r.Item1;

    /// <summary><c>SO_KEEPALIVE</c>: send keep-alive probes on an idle connection.</summary>
    public static readonly SocketOption<bool> KeepAlive =
        new("SO_KEEPALIVE", 1, 9, SocketOptionLevel.Socket, SocketOptionName.KeepAlive, EncodeBool, DecodeBool);

    /// <summary><c>TCP_KEEPIDLE</c>: idle time before the first keep-alive probe (whole seconds, at least 1).</summary>
    public static readonly SocketOption<TimeSpan> TcpKeepIdle =
        new("TCP_KEEPIDLE", 6, 4, SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveTime, EncodeSeconds, DecodeSeconds);

    /// <summary><c>TCP_KEEPINTVL</c>: time between keep-alive probes (whole seconds, at least 1).</summary>
    public static readonly SocketOption<TimeSpan> TcpKeepInterval =
        new("TCP_KEEPINTVL", 6, 5, SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveInterval, EncodeSeconds, DecodeSeconds);

    /// <summary><c>TCP_KEEPCNT</c>: unanswered probes before the connection is dropped.</summary>
    public static readonly SocketOption<int> TcpKeepCount =
        new("TCP_KEEPCNT", 6, 6, SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveRetryCount, EncodePositive, DecodeInt);

    /// <summary><c>TCP_NODELAY</c>: send small segments at once (disable Nagle's algorithm).</summary>
    public static readonly SocketOption<bool> NoDelay =
        new("TCP_NODELAY", 6, 1, SocketOptionLevel.Tcp, SocketOptionName.NoDelay, EncodeBool, DecodeBool);

    /// <summary><c>SO_RCVBUF</c>: the kernel receive buffer in bytes (Linux reports twice the value set).</summary>
    public static readonly SocketOption<int> ReceiveBufferSize =
        new("SO_RCVBUF", 1, 8, SocketOptionLevel.Socket, SocketOptionName.ReceiveBuffer, EncodePositive, DecodeInt);

    /// <summary><c>SO_SNDBUF</c>: the kernel send buffer in bytes (Linux reports twice the value set).</summary>
    public static readonly SocketOption<int> SendBufferSize =
        new("SO_SNDBUF", 1, 7, SocketOptionLevel.Socket, SocketOptionName.SendBuffer, EncodePositive, DecodeInt);

    /// <summary><c>SO_LINGER</c>: null is off (close returns at once, unsent data is sent in the background); a time makes
    /// close wait that long for unsent data (zero: reset the connection on close).</summary>
    public static readonly SocketOption<TimeSpan?> Linger =
        new("SO_LINGER", 1, 13, SocketOptionLevel.Socket, SocketOptionName.Linger,
            t => t is { } s ? (1, checked((int)ToSeconds(s))) : (0, 0),
            r => r.Item1 != 0 ? TimeSpan.FromSeconds(r.Item2) : null,
            linger: true);

    /// <summary><c>IP_TTL</c>: the time-to-live (hop limit) of outgoing IPv4 packets, 1..255.</summary>
    public static readonly SocketOption<int> IPTimeToLive =
        new("IP_TTL", 0, 2, SocketOptionLevel.IP, SocketOptionName.IpTimeToLive, EncodePositive, DecodeInt);

    /// <summary><c>IPV6_V6ONLY</c>: an IPv6 socket accepts IPv6 only (no IPv4-mapped addresses); set before bind.</summary>
    public static readonly SocketOption<bool> IPv6Only =
        new("IPV6_V6ONLY", 41, 26, SocketOptionLevel.IPv6, SocketOptionName.IPv6Only, EncodeBool, DecodeBool);

    /// <summary><c>SO_REUSEADDR</c>: bind a port with connections in TIME_WAIT; set before bind.</summary>
    public static readonly SocketOption<bool> ReuseAddress =
        new("SO_REUSEADDR", 1, 2, SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, EncodeBool, DecodeBool);

    /// <summary><c>SO_REUSEPORT</c> (Linux): several sockets bind the same port, the kernel spreads connections; set before bind.</summary>
    public static readonly SocketOption<bool> ReusePort =
        new("SO_REUSEPORT", 1, 15, SocketOptionLevel.Socket, null, EncodeBool, DecodeBool);

    private static (int, int) EncodePositive(int v)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(v);
        return (v, 0);
    }

    private static long ToSeconds(TimeSpan t)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(t, TimeSpan.Zero);
        return (long)Math.Ceiling(t.TotalSeconds);
    }

    private static (int, int) EncodeSeconds(TimeSpan t) => (checked((int)ToSeconds(t)), 0);

    private static TimeSpan DecodeSeconds((int, int) r) => TimeSpan.FromSeconds(r.Item1);
}

/// <summary>Reads and sets options on one kind of OS socket (a .NET <see cref="Socket"/>, a raw descriptor, or a mock).</summary>
internal abstract class SocketOptionTarget
{
    public abstract void Set(SocketOption option, int value, int extra);

    public abstract (int Value, int Extra) Get(SocketOption option);

    public void Apply(IReadOnlyList<SocketOptionSetting>? settings)
    {
        if (settings is null)
        {
            return;
        }

        foreach (var s in settings)
        {
            Set(s.Option, s.Value, s.Extra);
        }
    }
}

/// <summary>Options on a .NET <see cref="Socket"/> (the Portable backend; also used before a native socket is handed over).</summary>
internal sealed class DotNetSocketOptions(Socket socket) : SocketOptionTarget
{
    public override void Set(SocketOption option, int value, int extra)
    {
        try
        {
            if (option.IsLinger)
            {
                socket.LingerState = new LingerOption(value != 0, extra);
            }
            else if (option.DotNetName is { } name)
            {
                socket.SetSocketOption(option.Level, name, value);
            }
            else
            {
                RequireLinux(option);
                socket.SetRawSocketOption(option.LinuxLevel, option.LinuxName, BitConverter.GetBytes(value));
            }
        }
        catch (SocketException e)
        {
            throw NetException.From(e, $"setsockopt {option.Name}");
        }
    }

    public override (int Value, int Extra) Get(SocketOption option)
    {
        try
        {
            if (option.IsLinger)
            {
                var l = socket.LingerState!;
                return (l.Enabled ? 1 : 0, l.LingerTime);
            }

            if (option.DotNetName is { } name)
            {
                return ((int)socket.GetSocketOption(option.Level, name)!, 0);
            }

            RequireLinux(option);
            Span<byte> buf = stackalloc byte[sizeof(int)];
            socket.GetRawSocketOption(option.LinuxLevel, option.LinuxName, buf);
            return (BitConverter.ToInt32(buf), 0);
        }
        catch (SocketException e)
        {
            throw NetException.From(e, $"getsockopt {option.Name}");
        }
    }

    private static void RequireLinux(SocketOption option)
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException($"{option.Name} is supported on Linux only.");
        }
    }
}

/// <summary>Options on a raw Linux descriptor held by a <see cref="UseCountedHandle"/> (the epoll and io_uring backends).</summary>
internal sealed unsafe partial class NativeSocketOptions(UseCountedHandle handle, int fd) : SocketOptionTarget
{
    [LibraryImport("libc", SetLastError = true)]
    private static partial int setsockopt(int fd, int level, int name, int* value, int len);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int getsockopt(int fd, int level, int name, int* value, int* len);

    public override void Set(SocketOption option, int value, int extra)
    {
        Use(option, "setsockopt");
        try
        {
            int* buf = stackalloc int[2];
            buf[0] = value;
            buf[1] = extra;
            if (setsockopt(fd, option.LinuxLevel, option.LinuxName, buf, option.IsLinger ? 8 : 4) < 0)
            {
                throw Error(Marshal.GetLastPInvokeError(), $"setsockopt {option.Name}");
            }
        }
        finally
        {
            handle.EndUse();
        }
    }

    public override (int Value, int Extra) Get(SocketOption option)
    {
        Use(option, "getsockopt");
        try
        {
            int* buf = stackalloc int[2];
            buf[0] = buf[1] = 0;
            int len = option.IsLinger ? 8 : 4;
            if (getsockopt(fd, option.LinuxLevel, option.LinuxName, buf, &len) < 0)
            {
                throw Error(Marshal.GetLastPInvokeError(), $"getsockopt {option.Name}");
            }

            return (buf[0], buf[1]);
        }
        finally
        {
            handle.EndUse();
        }
    }

    private void Use(SocketOption option, string what)
    {
        if (!handle.TryUse())
        {
            throw new ObjectDisposedException(what, $"{what} {option.Name}: the socket is closed.");
        }
    }

    internal static NetException Error(int errno, string what)
    {
        var code = errno switch
        {
            22 => SocketError.InvalidArgument, // EINVAL
            92 => SocketError.ProtocolOption, // ENOPROTOOPT
            95 => SocketError.OperationNotSupported, // EOPNOTSUPP
            9 => SocketError.OperationAborted, // EBADF
            _ => SocketError.SocketError,
        };
        return new NetException($"{what}: {Marshal.GetPInvokeErrorMessage(errno)}", code);
    }
}

/// <summary>Options kept in a table (the mock backend): what was set reads back; unset options read as 0.</summary>
internal sealed class TableSocketOptions : SocketOptionTarget
{
    private readonly Dictionary<SocketOption, (int, int)> _values = [];

    public override void Set(SocketOption option, int value, int extra)
    {
        lock (_values)
        {
            _values[option] = (value, extra);
        }
    }

    public override (int Value, int Extra) Get(SocketOption option)
    {
        lock (_values)
        {
            return _values.GetValueOrDefault(option);
        }
    }
}
