using System.Net.Sockets;
using System.Text;

namespace EioSharp.TestKit;

/// <summary>A raw TCP RESP client for pipelining and protocol abuse. Replies are rendered as text:
/// <c>+OK</c>, <c>-ERR ...</c>, <c>:1</c>, <c>$value</c> (bulk), <c>$nil</c>, <c>*[a,b]</c>.</summary>
public sealed class RespClient : IDisposable
{
    private readonly Socket _socket;
    private readonly byte[] _buffer = new byte[64 * 1024];
    private int _start;
    private int _end;

    public RespClient(int port, int timeoutMs = 10_000)
    {
        _socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true, ReceiveTimeout = timeoutMs, SendTimeout = timeoutMs };
        _socket.Connect("127.0.0.1", port);
    }

    public void Send(byte[] data) => _socket.Send(data);

    public void Send(string text) => Send(Encoding.Latin1.GetBytes(text));

    public void SendCommand(params string[] args) => Send(RespCommand.Encode(args));

    public string Call(params string[] args)
    {
        SendCommand(args);
        return ReadReply();
    }

    public void ShutdownSend() => _socket.Shutdown(SocketShutdown.Send);

    /// <summary>Reads one reply; throws <see cref="EndOfStreamException"/> if the server closed the connection.</summary>
    public string ReadReply()
    {
        string line = ReadLine();
        switch (line[0])
        {
            case '+' or '-' or ':' or '_' or ',' or '#':
                return line;
            case '$':
                int len = int.Parse(line.AsSpan(1), System.Globalization.CultureInfo.InvariantCulture);
                if (len < 0)
                {
                    return "$nil";
                }

                byte[] data = ReadExactly(len + 2);
                return "$" + Encoding.Latin1.GetString(data, 0, len);
            case '*' or '%' or '~':
                int count = int.Parse(line.AsSpan(1), System.Globalization.CultureInfo.InvariantCulture);
                if (count < 0)
                {
                    return "*nil";
                }

                int items = line[0] == '%' ? count * 2 : count;
                var parts = new List<string>();
                for (int i = 0; i < items; i++)
                {
                    parts.Add(ReadReply());
                }

                return line[0] + "[" + string.Join(",", parts) + "]";
            default:
                throw new InvalidDataException($"Unexpected reply line '{line}'.");
        }
    }

    /// <summary>Reads until the server closes the connection (or the timeout); returns what came.</summary>
    public string ReadToEnd(out bool closed)
    {
        var sb = new StringBuilder(Encoding.Latin1.GetString(_buffer, _start, _end - _start));
        _start = _end = 0;
        closed = false;
        try
        {
            while (true)
            {
                int n = _socket.Receive(_buffer);
                if (n == 0)
                {
                    closed = true;
                    break;
                }

                sb.Append(Encoding.Latin1.GetString(_buffer, 0, n));
            }
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.TimedOut)
        {
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
            closed = true;
        }

        return sb.ToString();
    }

    private string ReadLine()
    {
        while (true)
        {
            int nl = Array.IndexOf(_buffer, (byte)'\n', _start, _end - _start);
            if (nl > _start && _buffer[nl - 1] == '\r')
            {
                string line = Encoding.Latin1.GetString(_buffer, _start, nl - 1 - _start);
                _start = nl + 1;
                return line;
            }

            Fill();
        }
    }

    private byte[] ReadExactly(int count)
    {
        var result = new byte[count];
        int got = 0;
        while (got < count)
        {
            if (_start == _end)
            {
                Fill();
            }

            int take = Math.Min(count - got, _end - _start);
            Buffer.BlockCopy(_buffer, _start, result, got, take);
            _start += take;
            got += take;
        }

        return result;
    }

    private void Fill()
    {
        if (_start > 0)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            _end -= _start;
            _start = 0;
        }

        if (_end == _buffer.Length)
        {
            throw new InvalidDataException("Reply line too long for the test client.");
        }

        int n = _socket.Receive(_buffer, _end, _buffer.Length - _end, SocketFlags.None);
        if (n == 0)
        {
            throw new EndOfStreamException("The server closed the connection.");
        }

        _end += n;
    }

    public void Dispose() => _socket.Dispose();
}
