using System.Buffers;
using System.Globalization;
using System.Text;

namespace EioSharp.Kv;

/// <summary>Writes RESP replies into an <see cref="IBufferWriter{T}"/>, in RESP2 or RESP3.</summary>
/// <remarks>
/// Methods whose reply type exists only in RESP3 (map, null, double, boolean) fall back to the RESP2
/// form Redis uses when <see cref="Protocol"/> is 2: map → flat array, null → null bulk or null array,
/// double → bulk string, boolean → integer 1/0.
/// <para><b>Thread safety</b>: not thread-safe; one writer per connection or per reply.</para>
/// </remarks>
public sealed class RespWriter
{
    private static readonly byte[] s_crlf = "\r\n"u8.ToArray();
    private int _protocol = 2;

    /// <summary>Creates a writer over <paramref name="output"/> speaking <paramref name="protocol"/> (2 or 3).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The protocol is not 2 or 3.</exception>
    public RespWriter(IBufferWriter<byte> output, int protocol = 2)
    {
        ArgumentNullException.ThrowIfNull(output);
        Output = output;
        Protocol = protocol;
    }

    /// <summary>The underlying buffer writer.</summary>
    public IBufferWriter<byte> Output { get; }

    /// <summary>RESP version: 2 (default) or 3 (after <c>HELLO 3</c>).</summary>
    /// <exception cref="ArgumentOutOfRangeException">Set to a value other than 2 or 3.</exception>
    public int Protocol
    {
        get => _protocol;
        set
        {
            if (value is not (2 or 3)) throw new ArgumentOutOfRangeException(nameof(value), value, "RESP version must be 2 or 3.");
            _protocol = value;
        }
    }

    /// <summary>Whether RESP3 forms are written.</summary>
    public bool IsResp3 => _protocol == 3;

    /// <summary>Number of replies (top-level or nested elements) written; useful for counting.</summary>
    public long ItemsWritten { get; private set; }

    /// <summary>Writes <c>+OK\r\n</c>.</summary>
    public void WriteOk() => WriteRaw("+OK\r\n"u8);

    /// <summary>Writes a simple string <c>+text\r\n</c>; CR and LF in <paramref name="text"/> become spaces.</summary>
    public void WriteSimpleString(string text) => WriteLine((byte)'+', text);

    /// <summary>Writes a simple string from bytes; CR and LF become spaces.</summary>
    public void WriteSimpleString(ReadOnlySpan<byte> text) => WriteLine((byte)'+', text);

    /// <summary>Writes an error <c>-message\r\n</c>; the message includes its code (<c>ERR ...</c>, <c>WRONGTYPE ...</c>).</summary>
    public void WriteError(string message)
    {
        LastError = message;
        ErrorCount++;
        WriteLine((byte)'-', message);
    }

    /// <summary>The last error written (INFO errorstats), or null.</summary>
    public string? LastError { get; private set; }

    /// <summary>Errors written by this writer (a command that raised it gave an error reply).</summary>
    public long ErrorCount { get; private set; }

    /// <summary>Writes an integer <c>:n\r\n</c>.</summary>
    public void WriteInteger(long value) => WritePrefixedNumber((byte)':', value);

    /// <summary>Writes a bulk string <c>$len\r\nbytes\r\n</c>.</summary>
    public void WriteBulkString(ReadOnlySpan<byte> value)
    {
        if (value.Length <= LargeWrite)
        {
            // The whole reply in one span (§219): one GetSpan and one Advance of the output instead of three of each
            // (the header, the bytes, the CRLF: ~250 instructions of a 16-byte GET's ~4,300, callgrind).
            Span<byte> span = Output.GetSpan(value.Length + MaxBulkHeader + 2);
            span[0] = (byte)'$';
            System.Buffers.Text.Utf8Formatter.TryFormat(value.Length, span[1..], out int digits);
            span[1 + digits] = (byte)'\r';
            span[2 + digits] = (byte)'\n';
            value.CopyTo(span[(3 + digits)..]);
            int end = 3 + digits + value.Length;
            span[end] = (byte)'\r';
            span[end + 1] = (byte)'\n';
            Output.Advance(end + 2);
            return;
        }
        if (Output is IReservingBufferWriter reserving)
        {
            reserving.Reserve(value.Length + 32); // one growth to the right size, not a chain of doublings left as garbage
        }
        WritePrefixedNumber((byte)'$', value.Length);
        ItemsWritten--;
        WriteRaw(value);
        WriteRaw(s_crlf);
    }

    private const int MaxBulkHeader = 13; // "$" + int.MaxValue's 10 digits + CRLF

    /// <summary>Writes a bulk string from UTF-8 encoded text.</summary>
    public void WriteBulkString(string value) => WriteBulkString(Encoding.UTF8.GetBytes(value));

    /// <summary>Writes a null bulk string: <c>$-1</c> in RESP2, <c>_</c> in RESP3.</summary>
    public void WriteNullBulkString()
    {
        WriteRaw(IsResp3 ? "_\r\n"u8 : "$-1\r\n"u8);
        ItemsWritten++;
    }

    /// <summary>Writes an array header <c>*count\r\n</c>; the caller writes <paramref name="count"/> elements next.</summary>
    public void WriteArrayHeader(int count) => WritePrefixedNumber((byte)'*', count);

    /// <summary>Writes a null array: <c>*-1</c> in RESP2, <c>_</c> in RESP3.</summary>
    public void WriteNullArray()
    {
        WriteRaw(IsResp3 ? "_\r\n"u8 : "*-1\r\n"u8);
        ItemsWritten++;
    }

    /// <summary>Writes a null: <c>_</c> in RESP3, a null bulk string in RESP2.</summary>
    public void WriteNull() => WriteNullBulkString();

    /// <summary>Writes a map header for <paramref name="pairs"/> key/value pairs: <c>%pairs</c> in RESP3, an array of 2*pairs in RESP2.</summary>
    public void WriteMapHeader(int pairs)
    {
        if (IsResp3) WritePrefixedNumber((byte)'%', pairs);
        else WritePrefixedNumber((byte)'*', checked(pairs * 2));
    }

    /// <summary>Writes a set header: <c>~count</c> in RESP3, an array in RESP2.</summary>
    public void WriteSetHeader(int count) => WritePrefixedNumber(IsResp3 ? (byte)'~' : (byte)'*', count);

    /// <summary>Writes a double: <c>,value</c> in RESP3, a bulk string in RESP2.</summary>
    public void WriteDouble(double value)
    {
        string text = RespNumbers.FormatDouble(value);
        if (IsResp3) WriteLine((byte)',', text);
        else WriteBulkString(text);
    }

    /// <summary>Writes a boolean: <c>#t</c>/<c>#f</c> in RESP3, integer 1/0 in RESP2.</summary>
    public void WriteBoolean(bool value)
    {
        if (IsResp3)
        {
            WriteRaw(value ? "#t\r\n"u8 : "#f\r\n"u8);
            ItemsWritten++;
        }
        else
        {
            WriteInteger(value ? 1 : 0);
        }
    }

    /// <summary>Writes a verbatim string (<c>=len\r\ntxt:...</c>) in RESP3, a bulk string in RESP2; Redis uses it for INFO.</summary>
    public void WriteVerbatimString(string text, string format = "txt")
    {
        if (!IsResp3)
        {
            WriteBulkString(text);
            return;
        }
        byte[] body = Encoding.UTF8.GetBytes(format + ":" + text);
        WritePrefixedNumber((byte)'=', body.Length);
        ItemsWritten--;
        WriteRaw(body);
        WriteRaw(s_crlf);
        ItemsWritten++;
    }

    /// <summary>Copies pre-encoded RESP bytes unchanged.</summary>
    public void WriteRaw(ReadOnlySpan<byte> bytes)
    {
        if (bytes.IsEmpty) return;
        if (bytes.Length > LargeWrite)
        {
            // In pieces: an output that bounds its size (the server's reply buffers) never has to hand out one span as
            // large as a huge value just to drop it.
            while (!bytes.IsEmpty)
            {
                Span<byte> piece = Output.GetSpan(Math.Min(bytes.Length, LargeWrite));
                int n = Math.Min(piece.Length, bytes.Length);
                bytes[..n].CopyTo(piece);
                Output.Advance(n);
                bytes = bytes[n..];
            }
            return;
        }
        Span<byte> span = Output.GetSpan(bytes.Length);
        bytes.CopyTo(span);
        Output.Advance(bytes.Length);
    }

    private const int LargeWrite = 256 * 1024;

    private void WritePrefixedNumber(byte prefix, long value)
    {
        Span<byte> span = Output.GetSpan(24);
        span[0] = prefix;
        value.TryFormat(span[1..], out int written, default, CultureInfo.InvariantCulture);
        span[1 + written] = (byte)'\r';
        span[2 + written] = (byte)'\n';
        Output.Advance(written + 3);
        ItemsWritten++;
    }

    private void WriteLine(byte prefix, string text)
    {
        int max = Encoding.UTF8.GetMaxByteCount(text.Length) + 3;
        Span<byte> span = Output.GetSpan(max);
        span[0] = prefix;
        int n = Encoding.UTF8.GetBytes(text, span[1..]);
        Sanitize(span.Slice(1, n));
        span[1 + n] = (byte)'\r';
        span[2 + n] = (byte)'\n';
        Output.Advance(n + 3);
        ItemsWritten++;
    }

    private void WriteLine(byte prefix, ReadOnlySpan<byte> text)
    {
        Span<byte> span = Output.GetSpan(text.Length + 3);
        span[0] = prefix;
        text.CopyTo(span[1..]);
        Sanitize(span.Slice(1, text.Length));
        span[1 + text.Length] = (byte)'\r';
        span[2 + text.Length] = (byte)'\n';
        Output.Advance(text.Length + 3);
        ItemsWritten++;
    }

    private static void Sanitize(Span<byte> text)
    {
        // A simple string or error cannot contain CR or LF; Redis replaces them with spaces.
        text.Replace((byte)'\r', (byte)' ');
        text.Replace((byte)'\n', (byte)' ');
    }
}

/// <summary>An output that can make room for a large write at once (the server's reply buffers): <see cref="RespWriter"/>
/// calls <see cref="Reserve"/> before a large bulk string, so that replying with a 500 MB value grows the buffer once to
/// the right size instead of doubling through a chain of arrays that all stay allocated until the next collection.</summary>
public interface IReservingBufferWriter
{
    /// <summary>Makes room for <paramref name="bytes"/> more bytes if the output may hold them (a bounded output over its
    /// limit does nothing).</summary>
    void Reserve(int bytes);
}
