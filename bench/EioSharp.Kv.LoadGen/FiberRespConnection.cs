using System.Buffers.Text;
using System.Net;
using System.Runtime.CompilerServices;
using System.Text;
using EioSharp.Net;

namespace EioSharp.Kv.LoadGen;

/// <summary>
/// A RESP2 client connection for a fiber on an EioSharp domain (the <c>--client eio</c> load generator): commands are
/// appended to a send buffer and written with <see cref="SendAsync"/>; replies are framed in place in the receive buffer
/// (<see cref="TryTakeFrame"/>), so reading and checking a reply allocates nothing. Every client of a workload is a fiber
/// of one domain: one thread and, on io_uring, one <c>io_uring_enter</c> per round for all the clients' sends and receives.
/// </summary>
internal sealed class FiberRespConnection
{
    private readonly StreamSocket _socket;
    private byte[] _in = new byte[64 * 1024];
    private int _start;
    private int _end;
    private int _frame; // length of the frame taken last (consumed by the next TryTakeFrame)
    private byte[] _out = new byte[64 * 1024];
    private int _outLength;

    private FiberRespConnection(StreamSocket socket) => _socket = socket;

    /// <summary>Connects to <paramref name="host"/>:<paramref name="port"/>; the socket belongs to <paramref name="sw"/>.</summary>
    public static async Task<FiberRespConnection> ConnectAsync(Stdenv env, Switch sw, string host, int port)
    {
        var address = IPAddress.TryParse(host, out var ip) ? ip : (await Dns.GetHostAddressesAsync(host))[0];
        return new FiberRespConnection(await env.Net.ConnectAsync(sw, new IPEndPoint(address, port)));
    }

    /// <summary>Appends pre-encoded bytes (a command encoded once with <see cref="RespConnection.Encode"/>).</summary>
    public void Append(ReadOnlySpan<byte> bytes)
    {
        if (_outLength + bytes.Length > _out.Length)
        {
            Array.Resize(ref _out, Math.Max(_out.Length * 2, _outLength + bytes.Length));
        }

        bytes.CopyTo(_out.AsSpan(_outLength));
        _outLength += bytes.Length;
    }

    /// <summary>Appends <c>$len\r\n</c>, the bytes and <c>\r\n</c>: one bulk string of a command being built.</summary>
    public void AppendBulk(ReadOnlySpan<byte> value)
    {
        AppendHeader((byte)'$', value.Length);
        Append(value);
        Append("\r\n"u8);
    }

    /// <summary>Appends a RESP header line: <paramref name="type"/>, the decimal <paramref name="count"/>, <c>\r\n</c>.</summary>
    public void AppendHeader(byte type, int count)
    {
        Span<byte> line = stackalloc byte[16];
        line[0] = type;
        Utf8Formatter.TryFormat(count, line[1..], out int digits);
        line[1 + digits] = (byte)'\r';
        line[2 + digits] = (byte)'\n';
        Append(line[..(3 + digits)]);
    }

    /// <summary>Writes everything appended (one write).</summary>
    public ValueTask SendAsync()
    {
        var data = _out.AsMemory(0, _outLength);
        _outLength = 0;
        return _socket.WriteAsync(data);
    }

    /// <summary>
    /// Takes the next whole reply if it is buffered (then <see cref="Frame"/> is its bytes, valid until the next call);
    /// the reply taken before is consumed by this call.
    /// </summary>
    public bool TryTakeFrame()
    {
        _start += _frame;
        _frame = 0;
        int pos = 0;
        if (!RespFrames.TrySkip(_in.AsSpan(_start, _end - _start), ref pos))
        {
            return false;
        }

        _frame = pos;
        return true;
    }

    /// <summary>The reply taken by the last successful <see cref="TryTakeFrame"/>.</summary>
    public ReadOnlySpan<byte> Frame => _in.AsSpan(_start, _frame);

    /// <summary>Receives more bytes into the buffer (after <see cref="TryTakeFrame"/> returned false); pass the result to <see cref="Received"/>.</summary>
    public ValueTask<int> ReceiveAsync()
    {
        RespConnection.MakeRoom(ref _in, ref _start, ref _end);

        return _socket.ReadAsync(_in.AsMemory(_end));
    }

    /// <summary>Accounts for <paramref name="n"/> bytes received by <see cref="ReceiveAsync"/>.</summary>
    /// <exception cref="EndOfStreamException">The server closed the connection (0 bytes).</exception>
    public void Received(int n) =>
        _end += n > 0 ? n : throw new EndOfStreamException("the server closed the connection");

    /// <summary>Waits until a whole reply is taken (<see cref="Frame"/>).</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask NextFrameAsync()
    {
        while (!TryTakeFrame())
        {
            Received(await ReceiveAsync());
        }
    }

    public void Close() => _socket.Close();
}

/// <summary>RESP2 replies read in place: framing, error replies, integers, bulk strings, array headers.</summary>
internal static class RespFrames
{
    /// <summary>Advances <paramref name="pos"/> over one whole value; false when the buffer ends inside it.</summary>
    /// <exception cref="InvalidDataException">A type byte that is not RESP2's.</exception>
    public static bool TrySkip(ReadOnlySpan<byte> b, ref int pos)
    {
        if (pos >= b.Length)
        {
            return false;
        }

        int nl = b[pos..].IndexOf((byte)'\n');
        if (nl < 0)
        {
            return false;
        }

        if (nl < 2)
        {
            throw new InvalidDataException("a reply line without its type or \\r");
        }

        byte type = b[pos];
        var line = b.Slice(pos + 1, nl - 2);
        pos += nl + 1;
        switch (type)
        {
            case (byte)'+' or (byte)'-' or (byte)':':
                return true;
            case (byte)'$':
            {
                long len = ParseLong(line);
                if (len < 0)
                {
                    return true;
                }

                if (pos + len + 2 > b.Length)
                {
                    return false;
                }

                pos += (int)len + 2;
                return true;
            }
            case (byte)'*':
            {
                long count = ParseLong(line);
                for (long i = 0; i < count; i++)
                {
                    if (!TrySkip(b, ref pos))
                    {
                        return false;
                    }
                }

                return true;
            }
            default:
                throw new InvalidDataException($"unexpected reply type '{(char)type}'");
        }
    }

    /// <summary>Throws for an error reply, else returns the frame.</summary>
    /// <exception cref="InvalidDataException">The reply is an error.</exception>
    public static ReadOnlySpan<byte> ThrowIfError(ReadOnlySpan<byte> frame) =>
        frame[0] == (byte)'-'
            ? throw new InvalidDataException("server replied with an error: " + Encoding.UTF8.GetString(frame[1..^2]))
            : frame;

    /// <summary>The value of an integer reply.</summary>
    /// <exception cref="InvalidDataException">Another reply.</exception>
    public static long Integer(ReadOnlySpan<byte> frame) =>
        ThrowIfError(frame)[0] == (byte)':' ? ParseLong(frame[1..^2]) : throw new InvalidDataException("expected an integer reply");

    /// <summary>Reads a header line (<c>*n</c>, <c>$n</c>) at <paramref name="pos"/> of a whole frame and returns n.</summary>
    /// <exception cref="InvalidDataException">The line has another type.</exception>
    public static long Header(ReadOnlySpan<byte> frame, ref int pos, byte type)
    {
        if (frame[pos] != type)
        {
            throw new InvalidDataException($"expected '{(char)type}', got '{(char)frame[pos]}'");
        }

        int nl = frame[pos..].IndexOf((byte)'\n');
        long n = ParseLong(frame.Slice(pos + 1, nl - 2));
        pos += nl + 1;
        return n;
    }

    /// <summary>Reads a (non-null) bulk string at <paramref name="pos"/> of a whole frame.</summary>
    public static ReadOnlySpan<byte> Bulk(ReadOnlySpan<byte> frame, ref int pos)
    {
        long len = Header(frame, ref pos, (byte)'$');
        if (len < 0)
        {
            throw new InvalidDataException("unexpected nil bulk string");
        }

        var value = frame.Slice(pos, (int)len);
        pos += (int)len + 2;
        return value;
    }

    private static long ParseLong(ReadOnlySpan<byte> digits) =>
        Utf8Parser.TryParse(digits, out long v, out int used) && used == digits.Length
            ? v
            : throw new InvalidDataException("bad number in a reply: " + Encoding.ASCII.GetString(digits));
}
