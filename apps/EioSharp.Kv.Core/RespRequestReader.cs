using System.Diagnostics.CodeAnalysis;

namespace EioSharp.Kv;

/// <summary>The resumable RESP request parser of one connection: keeps the arguments of a command received so far,
/// so that each byte is looked at a bounded number of times whatever the number of reads the command takes.</summary>
/// <remarks>
/// <para><b>Cost</b>: a command that is whole in the buffer is parsed by <see cref="RespParser"/> (one allocation for its
/// data). When it is not, the reader consumes its header and every complete argument (copying each once into its own
/// state), so the caller's buffer only ever holds the argument being received; a command of 1,000,000 arguments
/// trickled a few bytes per read costs time linear in its size (<see cref="RespParser"/> alone would walk every
/// header again on each read: quadratic).</para>
/// <para><b>Large arguments</b> (at least <see cref="LargeArgumentThreshold"/> bytes, Redis's PROTO_MBULK_BIG_ARG)
/// get an array of their exact size, and the caller reads the socket straight into <see cref="DirectTarget"/>: the
/// value is neither copied from a read buffer nor held twice, and no read buffer grows to its size. The command
/// hands that array to the store (<see cref="KvCommand.ToSharedArray"/>).</para>
/// <para><b>Limits</b>: every announced size is checked by the parser before anything is allocated, including Redis's
/// limits before authentication (<see cref="Unauthenticated"/>).</para>
/// <para><b>Thread safety</b>: one instance per connection, used by one fiber.</para>
/// </remarks>
public sealed class RespRequestReader
{
    /// <summary>Arguments of at least this many bytes get an array of their own (Redis's PROTO_MBULK_BIG_ARG: 32 KiB).</summary>
    public const int LargeArgumentThreshold = 32 * 1024;

    private readonly RespParser _parser;
    private readonly RespParser _unauthenticatedParser;

    // The command being received (when _remaining > 0).
    private long _remaining; // arguments still to come
    private int _argCount;
    private byte[] _small = new byte[256]; // payloads of the small arguments, back to back
    private int _smallLength;
    private int[] _offsets = new int[8]; // per argument: start in _small (a large argument: empty range)
    private byte[]?[]? _own; // per argument: its own array (large arguments)
    private byte[]? _large; // the large argument being received
    private int _largeFilled;
    private long _ownBytes; // large arguments received whole

    /// <summary>Creates a reader enforcing <paramref name="parser"/>'s limits.</summary>
    public RespRequestReader(RespParser parser)
    {
        ArgumentNullException.ThrowIfNull(parser);
        _parser = parser;
        _unauthenticatedParser = new RespParser(parser.Limits) { MultibulkOnly = parser.MultibulkOnly, Unauthenticated = true };
    }

    /// <summary>Whether the client has not authenticated yet (a password is required): Redis's lower limits apply to the
    /// next command (at most 10 arguments, bulks of at most 16 KiB). Set before each call.</summary>
    public bool Unauthenticated { get; set; }

    /// <summary>True while a command is partly received (its arguments so far are kept here).</summary>
    public bool InCommand => _remaining > 0;

    /// <summary>The part of a large argument still to receive: read the socket straight into it (then call
    /// <see cref="AdvanceDirect"/>) when no other received bytes are pending; empty otherwise.</summary>
    public Memory<byte> DirectTarget => _large is null ? Memory<byte>.Empty : _large.AsMemory(_largeFilled);

    /// <summary>Bytes held for the command being received (its small arguments), for memory accounting.</summary>
    public long BufferedBytes => _smallLength + _largeFilled;

    /// <summary>Bytes of the complete arguments kept of the command being received (Redis's <c>argv-mem</c>, its
    /// argv_len_sum): the small ones and the large ones received whole.</summary>
    public long ArgumentBytes => _smallLength + _ownBytes;

    /// <summary>Bytes of the large argument being received (read into <see cref="DirectTarget"/>): for Redis they are in the
    /// query buffer (<c>qbuf</c>), in which it receives a big argument.</summary>
    public long PartialArgumentBytes => _largeFilled;

    /// <summary>Bytes allocated for the large argument being received (its whole length, allocated when its header came;
    /// 0 when none): memory the client holds (CLIENT LIST <c>tot-mem</c>, used_memory).</summary>
    public long PartialArgumentCapacity => _large?.Length ?? 0;

    /// <summary>After a <see cref="TryRead(ReadOnlySpan{byte}, int, out int, out KvCommand?)"/> that returned false: the
    /// length of the <c>$n</c> header of a small argument whose data is not all received, left in the caller's buffer
    /// (the argument is taken whole). Redis has consumed that header (<c>qbuf</c> counts only the data after it).</summary>
    public int PendingHeaderLength { get; private set; }

    /// <summary>Records <paramref name="count"/> bytes read into <see cref="DirectTarget"/>.</summary>
    public void AdvanceDirect(int count)
    {
        if (_large is null || count < 0 || count > _large.Length - _largeFilled) throw new ArgumentOutOfRangeException(nameof(count));
        _largeFilled += count;
    }

    /// <summary>Parses the next command from <paramref name="buffer"/>, resuming the one partly received.</summary>
    /// <param name="buffer">Received bytes not yet consumed.</param>
    /// <param name="consumed">Bytes to drop from the front of the buffer, also when the result is false (complete
    /// arguments of an incomplete command are taken into the reader).</param>
    /// <param name="command">The command, when the result is true.</param>
    /// <returns>True when a command is complete.</returns>
    /// <exception cref="RespProtocolException">Malformed input or a limit exceeded (the connection must be closed).</exception>
    public bool TryRead(ReadOnlySpan<byte> buffer, out int consumed, [NotNullWhen(true)] out KvCommand? command) =>
        TryRead(buffer, -1, out consumed, out command);

    /// <summary>When set, a command whose bytes are all in the buffer is parsed in place: a view of this arena over the
    /// receive buffer (<see cref="KvCommandArena.Buffer"/>), valid until the arena is reset (see
    /// <see cref="TryRead(ReadOnlySpan{byte}, int, out int, out KvCommand?)"/>).</summary>
    public KvCommandArena? Arena { get; set; }

    /// <summary>As <see cref="TryRead(ReadOnlySpan{byte}, out int, out KvCommand?)"/>, where <paramref name="buffer"/> starts at
    /// <paramref name="bufferOffset"/> in <see cref="Arena"/>'s buffer: whole commands are views over it (no copy).
    /// A negative offset (or no arena): every command owns its data.</summary>
    public bool TryRead(ReadOnlySpan<byte> buffer, int bufferOffset, out int consumed, [NotNullWhen(true)] out KvCommand? command)
    {
        RespParser parser = Unauthenticated ? _unauthenticatedParser : _parser;
        int pos = 0;
        command = null;
        PendingHeaderLength = 0;
        while (true)
        {
            if (_remaining > 0)
            {
                bool done = Resume(parser, buffer, ref pos);
                consumed = pos;
                if (!done) return false;
                command = Finish();
                return true;
            }

            if (pos >= buffer.Length)
            {
                consumed = pos;
                return false;
            }

            ReadOnlySpan<byte> rest = buffer[pos..];
            if (rest[0] != (byte)'*')
            {
                if (!parser.TryParseInlineCommand(rest, out int used, out command))
                {
                    consumed = pos; // an inline line is bounded (64 KiB): it stays in the caller's buffer
                    return false;
                }

                pos += used;
                if (command is not null)
                {
                    consumed = pos;
                    return true;
                }

                continue; // an empty line
            }

            // The common case: the whole command is here.
            if (bufferOffset >= 0 && Arena is { } arena
                    ? parser.TryParseWholeMultibulkInPlace(rest, bufferOffset + pos, arena, out int whole, out command)
                    : parser.TryParseWholeMultibulk(rest, out whole, out command))
            {
                pos += whole;
                if (command is not null)
                {
                    consumed = pos;
                    return true;
                }

                continue; // *0 or a negative count: skipped
            }

            // Not whole: take its header and start keeping its arguments.
            if (!parser.TryReadMultibulkHeader(rest, out long count, out int next))
            {
                consumed = pos; // the header line itself is incomplete (bounded)
                return false;
            }

            pos += next;
            if (count <= 0) continue;
            Begin(count);
        }
    }

    private void Begin(long count)
    {
        _remaining = count;
        _argCount = 0;
        _smallLength = 0;
        _ownBytes = 0;
        _own = null;
        int capacity = (int)Math.Min(count + 1, 1024);
        if (_offsets.Length < capacity) _offsets = new int[capacity];
    }

    // Takes complete arguments from buffer[pos..]; true when the last one is in.
    private bool Resume(RespParser parser, ReadOnlySpan<byte> buffer, ref int pos)
    {
        while (_remaining > 0)
        {
            if (_large is not null)
            {
                int missing = _large.Length - _largeFilled;
                int take = Math.Min(missing, buffer.Length - pos);
                buffer.Slice(pos, take).CopyTo(_large.AsSpan(_largeFilled));
                _largeFilled += take;
                pos += take;
                if (_largeFilled < _large.Length || buffer.Length - pos < 2) return false;
                CheckTerminator(buffer, pos);
                pos += 2;
                AddOffset();
                (_own ??= new byte[]?[Math.Max(4, _offsets.Length)])[_argCount] = _large;
                _argCount++;
                _ownBytes += _large.Length;
                _large = null;
                _largeFilled = 0;
                _remaining--;
                continue;
            }

            if (!parser.TryReadBulkHeader(buffer, pos, out long length, out int next)) return false;
            if (length >= LargeArgumentThreshold)
            {
                pos = next;
                _large = new byte[length]; // bounded by the limits checked above
                _largeFilled = 0;
                continue;
            }

            int len = (int)length;
            if (buffer.Length - next < len + 2)
            {
                PendingHeaderLength = next - pos;
                return false; // a small argument waits whole in the caller's buffer (< 32 KiB)
            }

            CheckTerminator(buffer, next + len);
            if (_small.Length - _smallLength < len) Array.Resize(ref _small, Math.Max(_small.Length * 2, _smallLength + len));
            buffer.Slice(next, len).CopyTo(_small.AsSpan(_smallLength));
            AddOffset();
            _smallLength += len;
            _argCount++;
            _remaining--;
            pos = next + len + 2;
        }

        return true;
    }

    private static void CheckTerminator(ReadOnlySpan<byte> buffer, int at)
    {
        if (buffer[at] != (byte)'\r' || buffer[at + 1] != (byte)'\n')
            throw new RespProtocolException("Protocol error: expected '\\r\\n' after bulk string");
    }

    private void AddOffset()
    {
        if (_argCount + 1 >= _offsets.Length) Array.Resize(ref _offsets, _offsets.Length * 2);
        if (_own is not null && _own.Length < _offsets.Length) Array.Resize(ref _own, _offsets.Length);
        _offsets[_argCount] = _smallLength;
    }

    private KvCommand Finish()
    {
        var offsets = new int[_argCount + 1];
        Array.Copy(_offsets, offsets, _argCount);
        offsets[_argCount] = _smallLength;
        var data = _small.AsSpan(0, _smallLength).ToArray();
        byte[]?[]? own = null;
        if (_own is not null)
        {
            own = new byte[]?[_argCount];
            Array.Copy(_own, own, _argCount);
        }

        // Do not keep a large state for the next command.
        if (_small.Length > 64 * 1024) _small = new byte[256];
        if (_offsets.Length > 1024) _offsets = new int[8];
        _own = null;
        _smallLength = 0;
        _ownBytes = 0;
        _argCount = 0;
        return new KvCommand(data, offsets, own);
    }
}
