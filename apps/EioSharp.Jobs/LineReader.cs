using System.Text;
using EioSharp.IO;

namespace EioSharp.Jobs;

/// <summary>Reads newline-terminated ASCII lines from a flow, with a line-length limit checked before the buffer grows.</summary>
internal sealed class LineReader(IFlowSource source, int maxLineLength)
{
    private readonly byte[] _buffer = new byte[Math.Max(4096, maxLineLength + 2)];
    private int _start;
    private int _end;

    /// <summary>Reads the next line without its terminator (LF or CRLF).</summary>
    /// <returns>The line, or null at end of input (an unterminated last line is returned first).</returns>
    /// <exception cref="InvalidDataException">A line is longer than the limit.</exception>
    public async ValueTask<string?> ReadLineAsync()
    {
        while (true)
        {
            int nl = Array.IndexOf(_buffer, (byte)'\n', _start, _end - _start);
            if (nl >= 0)
            {
                int len = nl - _start;
                if (len > 0 && _buffer[nl - 1] == '\r')
                {
                    len--;
                }

                if (len > maxLineLength)
                {
                    throw new InvalidDataException($"line longer than {maxLineLength} bytes");
                }

                string line = Encoding.ASCII.GetString(_buffer, _start, len);
                _start = nl + 1;
                return line;
            }

            if (_end - _start > maxLineLength + 1)
            {
                throw new InvalidDataException($"line longer than {maxLineLength} bytes");
            }

            if (_start > 0)
            {
                Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
                _end -= _start;
                _start = 0;
            }

            int n = await source.ReadAsync(_buffer.AsMemory(_end));
            if (n == 0)
            {
                if (_end > _start)
                {
                    string last = Encoding.ASCII.GetString(_buffer, _start, _end - _start).TrimEnd('\r');
                    _start = _end;
                    return last;
                }

                return null;
            }

            _end += n;
        }
    }
}
