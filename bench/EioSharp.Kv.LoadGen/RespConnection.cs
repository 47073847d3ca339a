using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace EioSharp.Kv.LoadGen;

/// <summary>A blocking RESP2 client connection for load generation: commands are appended to a send buffer and sent
/// with <see cref="Flush"/> (so a pipeline is one write); replies are read from a 64 KiB receive buffer.</summary>
internal sealed class RespConnection : IDisposable
{
    private readonly Socket _socket;
    private byte[] _in = new byte[64 * 1024];
    private int _start;
    private int _end;
    private byte[] _out = new byte[64 * 1024];
    private int _outLength;

    public RespConnection(string host, int port)
    {
        _socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        _socket.Connect(host, port);
    }

    public Socket Socket => _socket;

    /// <summary>Appends one command (a RESP array of bulk strings) to the send buffer.</summary>
    public void Append(params string[] args)
    {
        AppendRaw("*" + args.Length.ToString(CultureInfo.InvariantCulture) + "\r\n");
        foreach (string a in args)
        {
            AppendRaw("$" + Encoding.UTF8.GetByteCount(a).ToString(CultureInfo.InvariantCulture) + "\r\n");
            AppendRaw(a);
            AppendRaw("\r\n");
        }
    }

    /// <summary>Appends pre-encoded bytes (a command encoded once with <see cref="Encode"/>).</summary>
    public void AppendRaw(ReadOnlySpan<byte> bytes)
    {
        if (_outLength + bytes.Length > _out.Length)
        {
            Array.Resize(ref _out, Math.Max(_out.Length * 2, _outLength + bytes.Length));
        }

        bytes.CopyTo(_out.AsSpan(_outLength));
        _outLength += bytes.Length;
    }

    private void AppendRaw(string s) => AppendRaw(Encoding.UTF8.GetBytes(s));

    /// <summary>Sends everything appended.</summary>
    public void Flush()
    {
        int sent = 0;
        while (sent < _outLength)
        {
            sent += _socket.Send(_out, sent, _outLength - sent, SocketFlags.None);
        }

        _outLength = 0;
    }

    /// <summary>Sends one command and reads its reply.</summary>
    public object? Call(params string[] args)
    {
        Append(args);
        Flush();
        return ReadReply();
    }

    /// <summary>Encodes a command once, to be appended many times.</summary>
    public static byte[] Encode(params string[] args)
    {
        var sb = new StringBuilder();
        sb.Append('*').Append(args.Length).Append("\r\n");
        foreach (string a in args)
        {
            sb.Append('$').Append(Encoding.UTF8.GetByteCount(a)).Append("\r\n").Append(a).Append("\r\n");
        }

        return Encoding.UTF8.GetBytes(sb.ToString());
    }

    /// <summary>Reads one reply: a string (simple or bulk), a long, null, or a list; an error reply throws.</summary>
    public object? ReadReply()
    {
        var (type, line) = ReadLine();
        switch (type)
        {
            case (byte)'+':
                return line;
            case (byte)'-':
                throw new InvalidDataException("server replied with an error: " + line);
            case (byte)':':
                return long.Parse(line, CultureInfo.InvariantCulture);
            case (byte)'$':
            {
                int len = int.Parse(line, CultureInfo.InvariantCulture);
                if (len < 0)
                {
                    return null;
                }

                EnsureBuffered(len + 2);
                string s = Encoding.UTF8.GetString(_in, _start, len);
                _start += len + 2;
                return s;
            }
            case (byte)'*':
            {
                int count = int.Parse(line, CultureInfo.InvariantCulture);
                if (count < 0)
                {
                    return null;
                }

                var items = new List<object?>(count);
                for (int i = 0; i < count; i++)
                {
                    items.Add(ReadReply());
                }

                return items;
            }
            default:
                throw new InvalidDataException($"unexpected reply type '{(char)type}'");
        }
    }

    /// <summary>Reads an integer reply.</summary>
    public long ReadInteger() => ReadReply() is long v ? v : throw new InvalidDataException("expected an integer reply");

    private (byte Type, string Line) ReadLine()
    {
        while (true)
        {
            int nl = Array.IndexOf(_in, (byte)'\n', _start, _end - _start);
            if (nl > _start)
            {
                byte type = _in[_start];
                string line = Encoding.ASCII.GetString(_in, _start + 1, nl - 2 - _start);
                _start = nl + 1;
                return (type, line);
            }

            Fill();
        }
    }

    private void EnsureBuffered(int count)
    {
        if (count > _in.Length)
        {
            var bigger = new byte[Math.Max(count, _in.Length * 2)];
            Buffer.BlockCopy(_in, _start, bigger, 0, _end - _start);
            _end -= _start;
            _start = 0;
            _in = bigger;
        }

        while (_end - _start < count)
        {
            Fill();
        }
    }

    /// <summary>Moves the unread bytes <c>[start, end)</c> of a receive buffer to its front and doubles the buffer when it
    /// is still full, so that a receive has room after them (both connection kinds' refill step).</summary>
    internal static void MakeRoom(ref byte[] buffer, ref int start, ref int end)
    {
        if (start > 0)
        {
            Buffer.BlockCopy(buffer, start, buffer, 0, end - start);
            end -= start;
            start = 0;
        }

        if (end == buffer.Length)
        {
            Array.Resize(ref buffer, buffer.Length * 2);
        }
    }

    private void Fill()
    {
        RespConnection.MakeRoom(ref _in, ref _start, ref _end);

        int n = _socket.Receive(_in, _end, _in.Length - _end, SocketFlags.None);
        if (n == 0)
        {
            throw new EndOfStreamException("the server closed the connection");
        }

        _end += n;
    }

    public void Dispose() => _socket.Dispose();
}
