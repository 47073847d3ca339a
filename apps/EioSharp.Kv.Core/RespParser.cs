using System.Buffers;
using System.Diagnostics.CodeAnalysis;

namespace EioSharp.Kv;

/// <summary>Incremental RESP request parser: multibulk arrays of bulk strings and inline commands.</summary>
/// <remarks>
/// The parser keeps no state between calls: each call parses from the start of the buffer it is given,
/// so the caller keeps unconsumed bytes and calls again when more arrive. That suits whole buffers (the AOF,
/// DUMP payloads); a network connection uses <see cref="RespRequestReader"/>, which keeps the arguments already
/// received and resumes where it stopped, so a command arriving in many reads costs time linear in its bytes.
/// <para><b>Errors</b>: "need more bytes" is a <c>false</c> return, never an exception; malformed
/// input throws <see cref="RespProtocolException"/> with Redis's wording. Every size announced by a
/// header is checked against <see cref="RespLimits"/> before anything is allocated.</para>
/// <para><b>Thread safety</b>: instances are immutable and may be shared.</para>
/// </remarks>
public sealed class RespParser
{
    private const int MaxNumberLineLength = 32; // "-9223372036854775808" is 20 bytes; anything longer is not a valid count

    /// <summary>A parser with <see cref="RespLimits.Default"/>.</summary>
    public static RespParser Default { get; } = new(RespLimits.Default);

    /// <summary>Creates a parser that enforces <paramref name="limits"/>.</summary>
    public RespParser(RespLimits limits)
    {
        ArgumentNullException.ThrowIfNull(limits);
        Limits = limits;
    }

    /// <summary>The limits this parser enforces.</summary>
    public RespLimits Limits { get; }

    /// <summary>When true, only multibulk commands are accepted (AOF files); an inline line is a protocol error.</summary>
    public bool MultibulkOnly { get; init; }

    /// <summary>Redis's limits for a client that has not authenticated yet (when a password is required): at most
    /// <see cref="UnauthenticatedMaxMultibulkCount"/> arguments and bulks of at most <see cref="UnauthenticatedMaxBulkLength"/>
    /// bytes, checked after the ordinary limits, with Redis's errors <c>Protocol error: unauthenticated multibulk length</c>
    /// and <c>Protocol error: unauthenticated bulk length</c>.</summary>
    public bool Unauthenticated { get; init; }

    /// <summary>Most arguments of a multibulk command before authentication (Redis 7: 10).</summary>
    public const int UnauthenticatedMaxMultibulkCount = 10;

    /// <summary>Largest bulk string before authentication, in bytes (Redis 7: 16384).</summary>
    public const int UnauthenticatedMaxBulkLength = 16384;

    /// <summary>Checks an announced argument count against the limits (Redis's order: invalid, then unauthenticated).</summary>
    internal void CheckMultibulkCount(long count)
    {
        if (count > Limits.MaxMultibulkCount) throw new RespProtocolException("Protocol error: invalid multibulk length");
        if (Unauthenticated && count > UnauthenticatedMaxMultibulkCount)
            throw new RespProtocolException("Protocol error: unauthenticated multibulk length");
    }

    /// <summary>Checks an announced bulk length against the limits (Redis's order: invalid, then unauthenticated).</summary>
    /// <remarks>Inline, with the throws in a call of their own: it runs for every argument (§221: ~15 instructions a
    /// call as a call).</remarks>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    internal void CheckBulkLength(long length)
    {
        if ((ulong)length > (ulong)Limits.MaxBulkLength || (Unauthenticated && length > UnauthenticatedMaxBulkLength)) ThrowBulkLength(length);
    }

    private void ThrowBulkLength(long length)
    {
        if (length < 0 || length > Limits.MaxBulkLength) throw new RespProtocolException("Protocol error: invalid bulk length");
        throw new RespProtocolException("Protocol error: unauthenticated bulk length");
    }

    /// <summary>Reads the header line of a multibulk (<c>*count\r\n</c>) at the start of <paramref name="buffer"/>.</summary>
    internal bool TryReadMultibulkHeader(ReadOnlySpan<byte> buffer, out long count, out int next)
    {
        if (!TryReadNumberLine(buffer, 1, "Protocol error: too big mbulk count string", "Protocol error: invalid multibulk length",
                out count, out next))
            return false;
        CheckMultibulkCount(count);
        return true;
    }

    /// <summary>Reads a bulk header (<c>$len\r\n</c>) at <paramref name="pos"/>; checks the limits.</summary>
    internal bool TryReadBulkHeader(ReadOnlySpan<byte> buffer, int pos, out long length, out int next)
    {
        length = 0;
        next = 0;
        if (pos >= buffer.Length) return false;
        if (buffer[pos] != (byte)'$')
            throw new RespProtocolException($"Protocol error: expected '$', got '{(char)buffer[pos]}'");
        if (!TryReadNumberLine(buffer, pos + 1, "Protocol error: too big bulk count string", "Protocol error: invalid bulk length",
                out length, out next))
            return false;
        CheckBulkLength(length);
        return true;
    }

    /// <summary>Parses an inline command at the start of <paramref name="buffer"/> (see <see cref="TryParseCommand(ReadOnlySpan{byte}, out int, out KvCommand?)"/>).</summary>
    internal bool TryParseInlineCommand(ReadOnlySpan<byte> buffer, out int consumed, out KvCommand? command) =>
        TryParseInline(buffer, out consumed, out command);

    /// <summary>Parses a multibulk command at the start of <paramref name="buffer"/> when it is complete there.</summary>
    internal bool TryParseWholeMultibulk(ReadOnlySpan<byte> buffer, out int consumed, out KvCommand? command) =>
        TryParseMultibulk(buffer, out consumed, out command);

    /// <summary>Parses the first complete command in <paramref name="buffer"/>.</summary>
    /// <param name="buffer">Received bytes not yet consumed.</param>
    /// <param name="consumed">Bytes to drop from the front of the buffer. Set even when the result is
    /// false: empty inline lines and empty arrays (<c>*0</c>) before an incomplete command are consumed.</param>
    /// <param name="command">The command, when the result is true.</param>
    /// <returns>True when a command was parsed; false when more bytes are needed.</returns>
    /// <exception cref="RespProtocolException">The input is malformed or exceeds a limit.</exception>
    public bool TryParseCommand(ReadOnlySpan<byte> buffer, out int consumed, [NotNullWhen(true)] out KvCommand? command)
    {
        int pos = 0;
        while (pos < buffer.Length)
        {
            ReadOnlySpan<byte> rest = buffer[pos..];
            int used;
            bool complete = rest[0] == (byte)'*'
                ? TryParseMultibulk(rest, out used, out command)
                : TryParseInline(rest, out used, out command);
            if (!complete)
            {
                consumed = pos;
                return false;
            }
            pos += used;
            if (command is not null)
            {
                consumed = pos;
                return true;
            }
            // An empty line or empty array: skip it and look at what follows.
        }
        consumed = pos;
        command = null;
        return false;
    }

    /// <summary>Parses the first complete command in <paramref name="buffer"/>; see the span overload.</summary>
    /// <remarks>A multi-segment buffer is copied into one contiguous array before parsing (cost linear in
    /// the buffered bytes per call); callers that read large values should keep a contiguous buffer.</remarks>
    /// <exception cref="RespProtocolException">The input is malformed or exceeds a limit.</exception>
    public bool TryParseCommand(in ReadOnlySequence<byte> buffer, out long consumed, [NotNullWhen(true)] out KvCommand? command)
    {
        if (buffer.IsSingleSegment)
        {
            bool r = TryParseCommand(buffer.FirstSpan, out int used, out command);
            consumed = used;
            return r;
        }
        if (buffer.Length > int.MaxValue) throw new RespProtocolException("Protocol error: too big request");
        byte[] rented = ArrayPool<byte>.Shared.Rent((int)buffer.Length);
        try
        {
            buffer.CopyTo(rented);
            bool r = TryParseCommand(rented.AsSpan(0, (int)buffer.Length), out int used, out command);
            consumed = used;
            return r;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    // Multibulk: *<count>\r\n then count times $<len>\r\n<bytes>\r\n.
    // Returns true with command == null for a count <= 0 (Redis skips such arrays).
    private bool TryParseMultibulk(ReadOnlySpan<byte> buffer, out int consumed, out KvCommand? command)
    {
        command = null;
        consumed = 0;
        if (!TryReadMultibulkHeader(buffer, out long count, out int pos))
            return false;
        if (count <= 0)
        {
            consumed = pos;
            return true;
        }

        // Pass 1: walk the headers, check limits, find the total payload size. No allocation.
        int start = pos;
        long total = 0;
        for (long i = 0; i < count; i++)
        {
            if (!TryReadBulkHeader(buffer, pos, out long length, out int next))
                return false;
            if (buffer.Length - next < length + 2) return false;
            int end = next + (int)length;
            if (buffer[end] != (byte)'\r' || buffer[end + 1] != (byte)'\n')
                throw new RespProtocolException("Protocol error: expected '\\r\\n' after bulk string");
            total += length;
            pos = end + 2;
        }
        if (total > Array.MaxLength) throw new RespProtocolException("Protocol error: too big request");

        // Pass 2: copy the payloads into one array.
        var data = new byte[total];
        var offsets = new int[count + 1];
        int write = 0;
        int p = start;
        for (int i = 0; i < count; i++)
        {
            TryReadNumberLine(buffer, p + 1, "", "", out long length, out int next);
            offsets[i] = write;
            buffer.Slice(next, (int)length).CopyTo(data.AsSpan(write));
            write += (int)length;
            p = next + (int)length + 2;
        }
        offsets[count] = write;
        consumed = p;
        command = new KvCommand(data, offsets);
        return true;
    }

    /// <summary>Parses a whole multibulk command at the front of <paramref name="buffer"/> in place: the command is a view
    /// of <paramref name="arena"/> over the receive buffer (no copy, no allocation in steady state).</summary>
    /// <param name="buffer">The received bytes.</param>
    /// <param name="bufferOffset">Where <paramref name="buffer"/> starts in <see cref="KvCommandArena.Buffer"/>.</param>
    /// <param name="arena">Holds the argument positions and the view.</param>
    /// <param name="consumed">Bytes of the command (when the result is true).</param>
    /// <param name="command">The view, when the result is true and the count positive.</param>
    /// <returns>False when the command is not whole yet (nothing is kept); true with a null command for <c>*0</c> or a
    /// negative count (skipped).</returns>
    /// <exception cref="RespProtocolException">Malformed input or a limit exceeded.</exception>
    internal bool TryParseWholeMultibulkInPlace(ReadOnlySpan<byte> buffer, int bufferOffset, KvCommandArena arena, out int consumed, out KvCommand? command)
    {
        command = null;
        consumed = 0;
        long count;
        int pos;
        if (TryReadShortNumber(buffer, 1, out count, out pos))
        {
            CheckMultibulkCount(count); // the usual header (the caller saw its '*'), read here as the bulk headers are (§221)
        }
        else if (!TryReadMultibulkHeader(buffer, out count, out pos))
        {
            return false;
        }
        if (count <= 0)
        {
            consumed = pos;
            return true;
        }
        if (count > buffer.Length) return false; // every argument takes at least 4 bytes ("$0\r\n")
        int first = arena.Reserve((int)count);
        int[] positions = arena.Positions;
        for (int i = 0; i < (int)count; i++)
        {
            long length;
            int next;
            if ((uint)pos < (uint)buffer.Length && buffer[pos] == (byte)'$' && TryReadShortNumber(buffer, pos + 1, out length, out next))
            {
                CheckBulkLength(length); // the usual header, read here (no call of TryReadBulkHeader, TryReadNumberLine)
            }
            else if (!TryReadBulkHeader(buffer, pos, out length, out next))
            {
                arena.Unreserve((int)count);
                return false;
            }
            if (buffer.Length - next < length + 2)
            {
                arena.Unreserve((int)count);
                return false;
            }
            int end = next + (int)length;
            if (buffer[end] != (byte)'\r' || buffer[end + 1] != (byte)'\n')
                throw new RespProtocolException("Protocol error: expected '\\r\\n' after bulk string");
            positions[first + 2 * i] = bufferOffset + next;
            positions[first + 2 * i + 1] = (int)length;
            pos = end + 2;
        }
        consumed = pos;
        // The request's bytes are its AOF encoding (canonical: TryReadNumberLine's string2ll rules, CRLF after each line).
        command = arena.View(first, (int)count, bufferOffset, pos);
        return true;
    }

    // The usual number line (a count or a length: 1 to 18 digits, no sign, no leading zero, then CRLF) read in one pass:
    // a request's four lines took a vectorised IndexOf and TryParseInt64 each (~150 instructions of a 16-byte SET's).
    // False for anything else (zero, a sign, a long or cut line, an error): TryReadNumberLine's general path decides
    // those, alike for every line this accepts.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static bool TryReadShortNumber(ReadOnlySpan<byte> buffer, int start, out long value, out int next)
    {
        int i = start;
        if ((uint)i < (uint)buffer.Length && (uint)(buffer[i] - '1') <= 8)
        {
            long v = buffer[i] - '0';
            int limit = Math.Min(buffer.Length, start + 18);
            uint d;
            while (++i < limit && (d = (uint)(buffer[i] - '0')) <= 9) v = (v * 10) + d;
            if (i + 1 < buffer.Length && buffer[i] == (byte)'\r' && buffer[i + 1] == (byte)'\n')
            {
                value = v;
                next = i + 2;
                return true;
            }
        }
        value = 0;
        next = 0;
        return false;
    }

    // Reads "<digits>\r\n" starting at buffer[start]; Redis's string2ll rules (optional '-', no '+', no leading zeros).
    private bool TryReadNumberLine(ReadOnlySpan<byte> buffer, int start, string tooBig, string invalid, out long value, out int next)
    {
        if (TryReadShortNumber(buffer, start, out value, out next)) return true;
        value = 0;
        next = 0;
        ReadOnlySpan<byte> rest = buffer[start..];
        int cr = rest.IndexOf((byte)'\r');
        if (cr < 0)
        {
            if (rest.Length > Limits.MaxInlineLength) throw new RespProtocolException(tooBig);
            if (rest.Length > MaxNumberLineLength) throw new RespProtocolException(invalid);
            return false;
        }
        if (cr + 1 >= rest.Length)
        {
            if (cr > MaxNumberLineLength) throw new RespProtocolException(invalid);
            return false;
        }
        if (rest[cr + 1] != (byte)'\n' || !RespNumbers.TryParseInt64(rest[..cr], out value))
            throw new RespProtocolException(invalid);
        next = start + cr + 2;
        return true;
    }

    // Inline: one line of space-separated arguments, terminated by \n or \r\n, with Redis's quoting.
    // Returns true with command == null for an empty line.
    private bool TryParseInline(ReadOnlySpan<byte> buffer, out int consumed, out KvCommand? command)
    {
        command = null;
        consumed = 0;
        if (MultibulkOnly) throw new RespProtocolException($"Protocol error: expected '*', got '{(char)buffer[0]}'");
        int window = (int)Math.Min(buffer.Length, (long)Limits.MaxInlineLength + 2);
        int newline = buffer[..window].IndexOf((byte)'\n');
        if (newline < 0)
        {
            if (buffer.Length > Limits.MaxInlineLength) throw new RespProtocolException("Protocol error: too big inline request");
            return false;
        }
        int lineEnd = newline > 0 && buffer[newline - 1] == (byte)'\r' ? newline - 1 : newline;
        if (lineEnd > Limits.MaxInlineLength) throw new RespProtocolException("Protocol error: too big inline request");
        consumed = newline + 1;
        command = InlineSplitter.Split(buffer[..lineEnd]);
        return true;
    }
}

/// <summary>Redis's <c>sdssplitargs</c>: splits an inline line into arguments with its quoting rules.</summary>
internal static class InlineSplitter
{
    /// <summary>Returns the command, or null for a line with no arguments.</summary>
    /// <exception cref="RespProtocolException">Unbalanced quotes.</exception>
    public static KvCommand? Split(ReadOnlySpan<byte> line)
    {
        // The output is never longer than the line, so one buffer of the line's size holds every argument.
        var data = new byte[line.Length];
        var offsets = new List<int>();
        int write = 0;
        int p = 0;
        while (true)
        {
            while (p < line.Length && IsSpace(line[p])) p++;
            if (p >= line.Length || line[p] == 0) break;
            offsets.Add(write);
            bool inDouble = false, inSingle = false, done = false;
            while (!done)
            {
                byte c = p < line.Length ? line[p] : (byte)0;
                if (inDouble)
                {
                    if (c == '\\' && p + 3 < line.Length && line[p + 1] == 'x' && IsHex(line[p + 2]) && IsHex(line[p + 3]))
                    {
                        data[write++] = (byte)(HexValue(line[p + 2]) * 16 + HexValue(line[p + 3]));
                        p += 3;
                    }
                    else if (c == '\\' && p + 1 < line.Length && line[p + 1] != 0)
                    {
                        p++;
                        data[write++] = line[p] switch
                        {
                            (byte)'n' => (byte)'\n',
                            (byte)'r' => (byte)'\r',
                            (byte)'t' => (byte)'\t',
                            (byte)'b' => (byte)'\b',
                            (byte)'a' => (byte)'\a',
                            var other => other,
                        };
                    }
                    else if (c == '"')
                    {
                        // The closing quote must be followed by a space or the end of the line.
                        if (p + 1 < line.Length && !IsSpace(line[p + 1]) && line[p + 1] != 0) throw Unbalanced();
                        done = true;
                    }
                    else if (p >= line.Length || c == 0)
                    {
                        throw Unbalanced();
                    }
                    else
                    {
                        data[write++] = c;
                    }
                }
                else if (inSingle)
                {
                    if (c == '\\' && p + 1 < line.Length && line[p + 1] == '\'')
                    {
                        p++;
                        data[write++] = (byte)'\'';
                    }
                    else if (c == '\'')
                    {
                        if (p + 1 < line.Length && !IsSpace(line[p + 1]) && line[p + 1] != 0) throw Unbalanced();
                        done = true;
                    }
                    else if (p >= line.Length || c == 0)
                    {
                        throw Unbalanced();
                    }
                    else
                    {
                        data[write++] = c;
                    }
                }
                else
                {
                    switch (c)
                    {
                        case (byte)' ':
                        case (byte)'\n':
                        case (byte)'\r':
                        case (byte)'\t':
                        case 0:
                            done = true;
                            break;
                        case (byte)'"':
                            inDouble = true;
                            break;
                        case (byte)'\'':
                            inSingle = true;
                            break;
                        default:
                            data[write++] = c;
                            break;
                    }
                }
                if (done && c == 0 && !inDouble && !inSingle) break; // a NUL byte ends the line, as in C
                if (p < line.Length) p++;
            }
        }
        if (offsets.Count == 0) return null;
        var table = new int[offsets.Count + 1];
        offsets.CopyTo(table);
        table[^1] = write;
        return new KvCommand(write == data.Length ? data : data.AsSpan(0, write).ToArray(), table);
    }

    private static bool IsSpace(byte b) => b is (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\r' or (byte)'\v' or (byte)'\f';

    private static bool IsHex(byte b) => b is >= (byte)'0' and <= (byte)'9' or >= (byte)'a' and <= (byte)'f' or >= (byte)'A' and <= (byte)'F';

    private static int HexValue(byte b) => b <= '9' ? b - '0' : (b | 0x20) - 'a' + 10;

    private static RespProtocolException Unbalanced() => new("Protocol error: unbalanced quotes in request");
}
