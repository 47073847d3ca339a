namespace EioSharp.StatsdFilter;

/// <summary>Splits StatsD payloads into lines without allocating.</summary>
/// <remarks>
/// <para>
/// A StatsD datagram carries one or more lines separated by <c>\n</c>. Each line may end in
/// <c>\r\n</c> (the <c>\r</c> is removed), the last line may or may not be followed by a newline,
/// and empty lines (including a lone <c>\r</c>) are skipped. Nothing else is trimmed: the lines
/// returned are the exact bytes that are forwarded.
/// </para>
/// <para>
/// For TCP, where lines are split across reads, use <see cref="StatsdTcpLineFramer"/>.
/// </para>
/// <para><b>Thread safety</b>: the methods are pure; the enumerator is a stack-only value.</para>
/// </remarks>
public static class StatsdLineSplitter
{
    /// <summary>The longest line accepted on a TCP stream, in bytes (the seed's per-request limit).</summary>
    /// <remarks>
    /// The limit is on the bytes before the terminating <c>\n</c>, including a trailing <c>\r</c>.
    /// It bounds the memory one connection can make the proxy buffer.
    /// </remarks>
    public const int MaxLineLength = 8192;

    /// <summary>The receive buffer for one UDP datagram, in bytes: 64 KiB holds any UDP payload (at most 65,507 bytes over IPv4), so no valid datagram is truncated (the seed's 8192-byte limit would cut large batches); the network code still counts any datagram the socket reports as truncated.</summary>
    public const int DatagramReceiveBufferSize = 64 * 1024;

    /// <summary>Enumerates the non-empty lines of one UDP datagram payload.</summary>
    /// <param name="payload">The datagram payload; the returned spans point into it.</param>
    /// <returns>A stack-only enumerator, usable with <c>foreach</c>.</returns>
    public static LineEnumerator SplitDatagram(ReadOnlySpan<byte> payload) => new(payload);

    /// <summary>Removes one trailing <c>\r</c> from a line, if present.</summary>
    /// <param name="line">A line without its <c>\n</c>.</param>
    /// <returns>The line without a trailing carriage return.</returns>
    public static ReadOnlySpan<byte> TrimCarriageReturn(ReadOnlySpan<byte> line) =>
        line.Length > 0 && line[^1] == (byte)'\r' ? line[..^1] : line;

    /// <summary>A stack-only enumerator over the non-empty lines of a payload.</summary>
    public ref struct LineEnumerator
    {
        private ReadOnlySpan<byte> _remaining;
        private ReadOnlySpan<byte> _current;

        internal LineEnumerator(ReadOnlySpan<byte> payload)
        {
            _remaining = payload;
            _current = default;
        }

        /// <summary>The current line, without its terminator.</summary>
        public readonly ReadOnlySpan<byte> Current => _current;

        /// <summary>Returns this enumerator (enables <c>foreach</c>).</summary>
        /// <returns>This enumerator.</returns>
        public readonly LineEnumerator GetEnumerator() => this;

        /// <summary>Advances to the next non-empty line.</summary>
        /// <returns><see langword="true"/> if a line is available in <see cref="Current"/>.</returns>
        public bool MoveNext()
        {
            while (_remaining.Length > 0)
            {
                int newline = _remaining.IndexOf((byte)'\n');
                ReadOnlySpan<byte> line;
                if (newline < 0)
                {
                    line = _remaining;
                    _remaining = default;
                }
                else
                {
                    line = _remaining[..newline];
                    _remaining = _remaining[(newline + 1)..];
                }

                line = TrimCarriageReturn(line);
                if (line.Length > 0)
                {
                    _current = line;
                    return true;
                }
            }

            _current = default;
            return false;
        }
    }
}

/// <summary>Frames newline-terminated StatsD lines on a TCP stream, keeping a partial last line across reads.</summary>
/// <remarks>
/// <para>
/// Usage, one framer per connection: receive into <see cref="GetReadBuffer"/>, call
/// <see cref="Advance"/> with the byte count, then call <see cref="TryReadLine"/> until it returns
/// <see langword="false"/>. At end of stream, <see cref="TryReadFinalLine"/> returns an
/// unterminated last line, if any.
/// </para>
/// <para>
/// Lines follow the rules of <see cref="StatsdLineSplitter"/>: <c>\r\n</c> accepted, empty lines
/// skipped. A line longer than <see cref="MaxLineLength"/> bytes (before its <c>\n</c>) is dropped
/// whole, however it was split across reads, and counted in <see cref="TruncatedLines"/>; the
/// framer never buffers more than <see cref="MaxLineLength"/> bytes of a partial line.
/// </para>
/// <para>
/// <b>Lifetime</b>: a span returned by <see cref="TryReadLine"/> points into the framer's buffer and
/// stays valid until the next call to <see cref="GetReadBuffer"/>.
/// </para>
/// <para><b>Thread safety</b>: not thread-safe; use one instance per connection.</para>
/// </remarks>
public sealed class StatsdTcpLineFramer
{
    /// <summary>The default size of the region handed out for one receive, in bytes.</summary>
    public const int DefaultReceiveSize = 16 * 1024;

    private readonly byte[] _buffer;
    private int _start;   // first unconsumed byte
    private int _end;     // one past the last received byte
    private int _scanned; // bytes after _start already known to contain no '\n'
    private bool _discarding; // inside an over-long line: skip bytes up to the next '\n'

    /// <summary>Creates a framer.</summary>
    /// <param name="maxLineLength">The longest accepted line in bytes, at least 1; default <see cref="StatsdLineSplitter.MaxLineLength"/>.</param>
    /// <param name="receiveSize">The minimum free space <see cref="GetReadBuffer"/> hands out, in bytes, at least 1.</param>
    /// <exception cref="ArgumentOutOfRangeException">An argument is less than 1.</exception>
    public StatsdTcpLineFramer(int maxLineLength = StatsdLineSplitter.MaxLineLength, int receiveSize = DefaultReceiveSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLineLength, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(receiveSize, 1);
        MaxLineLength = maxLineLength;
        _buffer = new byte[maxLineLength + receiveSize];
    }

    /// <summary>The longest accepted line, in bytes, not counting its <c>\n</c>.</summary>
    public int MaxLineLength { get; }

    /// <summary>The number of over-long lines dropped so far (cumulative).</summary>
    public long TruncatedLines { get; private set; }

    /// <summary>The number of bytes received but not yet returned as lines.</summary>
    public int BufferedBytes => _end - _start;

    /// <summary>Returns free space to receive the next bytes into.</summary>
    /// <returns>A non-empty region of the framer's buffer.</returns>
    /// <remarks>Invalidates spans returned earlier by <see cref="TryReadLine"/>.</remarks>
    /// <exception cref="InvalidOperationException">The complete lines already buffered were not read with <see cref="TryReadLine"/>.</exception>
    public Memory<byte> GetReadBuffer()
    {
        if (_start > 0)
        {
            int length = _end - _start;
            _buffer.AsSpan(_start, length).CopyTo(_buffer);
            _start = 0;
            _end = length;
        }

        if (_end == _buffer.Length)
        {
            throw new InvalidOperationException("Read the buffered lines with TryReadLine before receiving more bytes.");
        }

        return _buffer.AsMemory(_end);
    }

    /// <summary>Records that <paramref name="count"/> bytes were received into the region from <see cref="GetReadBuffer"/>.</summary>
    /// <param name="count">Bytes received, from zero up to the length of that region.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="count"/> is negative or larger than the free space.</exception>
    public void Advance(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, _buffer.Length - _end);
        _end += count;
    }

    /// <summary>Returns the next complete, non-empty line that fits the limit.</summary>
    /// <param name="line">The line without <c>\n</c> or trailing <c>\r</c>; valid until the next <see cref="GetReadBuffer"/>.</param>
    /// <returns><see langword="false"/> when more bytes are needed.</returns>
    public bool TryReadLine(out ReadOnlySpan<byte> line)
    {
        while (true)
        {
            ReadOnlySpan<byte> pending = _buffer.AsSpan(_start, _end - _start);
            int found = pending[_scanned..].IndexOf((byte)'\n');
            if (found < 0)
            {
                if (_discarding)
                {
                    _start = _end = _scanned = 0;
                }
                else if (pending.Length > MaxLineLength)
                {
                    // The line can no longer fit: drop what we have and skip to its end.
                    TruncatedLines++;
                    _discarding = true;
                    _start = _end = _scanned = 0;
                }
                else
                {
                    _scanned = pending.Length;
                }

                line = default;
                return false;
            }

            int newline = _scanned + found;
            ReadOnlySpan<byte> raw = pending[..newline];
            _start += newline + 1;
            _scanned = 0;
            if (_discarding)
            {
                _discarding = false;
                continue;
            }

            if (raw.Length > MaxLineLength)
            {
                TruncatedLines++;
                continue;
            }

            raw = StatsdLineSplitter.TrimCarriageReturn(raw);
            if (raw.Length > 0)
            {
                line = raw;
                return true;
            }
        }
    }

    /// <summary>At end of stream, returns the unterminated last line and clears the framer.</summary>
    /// <param name="line">The last line without trailing <c>\r</c>; valid until the next <see cref="GetReadBuffer"/>.</param>
    /// <returns><see langword="true"/> if a non-empty last line within the limit was pending.</returns>
    /// <remarks>Call <see cref="TryReadLine"/> until it returns <see langword="false"/> first.</remarks>
    public bool TryReadFinalLine(out ReadOnlySpan<byte> line)
    {
        ReadOnlySpan<byte> pending = _buffer.AsSpan(_start, _end - _start);
        bool discarding = _discarding;
        _start = _end = _scanned = 0;
        _discarding = false;
        line = default;
        if (discarding || pending.Length == 0 || pending.Contains((byte)'\n'))
        {
            return false;
        }

        if (pending.Length > MaxLineLength)
        {
            TruncatedLines++;
            return false;
        }

        line = StatsdLineSplitter.TrimCarriageReturn(pending);
        return line.Length > 0;
    }
}
