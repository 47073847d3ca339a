using System.Buffers.Text;

namespace EioSharp.Kv;

/// <summary>Builds a command the store runs or logs itself (a nested LPOP of BLPOP, an XCLAIM effect of XREADGROUP)
/// into one reused buffer, handed out as a view (<see cref="KvCommand.IsView"/>): no array per argument and no command
/// object per call.</summary>
/// <remarks>The command returned by <see cref="Build"/> is valid until the next <see cref="Start"/>; whoever keeps it
/// longer keeps <see cref="KvCommand.ToOwned"/> (the AOF sinks encode or copy it at once). A builder serves one command
/// at a time: code that may run while a built command is still in use takes a builder of its own.
/// <para><b>Encoded</b> (a builder made with <c>encoded: true</c>: the store's log builder, whose commands all go to the
/// AOF): the arguments are laid out as their RESP multibulk encoding (<c>$len\r\n</c>, the bytes, <c>\r\n</c> each;
/// <see cref="Build"/> writes the <c>*N\r\n</c> header into room kept before them), so the view's
/// <see cref="KvCommand.TryGetEncoded"/> gives the AOF entry as it is, as for a request parsed whole: the AOF copies it
/// instead of sizing and formatting every argument again (an XREADGROUP delivery logs an XCLAIM of 14 arguments).
/// The other builders (a command the store runs: a nested LPOP, redis.call's command, a blocked command's copy) do not
/// format what may never be logged.</para>
/// Thread safety: none (the store owner).</remarks>
internal sealed class KvCommandBuilder
{
    private const int KeepBytes = 64 * 1024; // a larger buffer (a big argument) is dropped at the next Start
    private const int HeaderRoom = 16; // before the first argument: room for the "*N\r\n" header (at most 13 bytes)

    private readonly bool _encoded;
    private byte[] _data = new byte[256];
    private int[] _positions = new int[32]; // (start, length) pairs
    private int _length;
    private int _count;
    private KvCommand? _view;

    /// <summary>A builder; <paramref name="encoded"/>: lay the arguments out as their AOF encoding (see the remarks).</summary>
    public KvCommandBuilder(bool encoded = false) => _encoded = encoded;

    /// <summary>Forgets the previous command and starts a new one.</summary>
    public KvCommandBuilder Start()
    {
        if (_data.Length > KeepBytes) _data = new byte[256];
        _length = _encoded ? HeaderRoom : 0;
        _count = 0;
        return this;
    }

    /// <summary>Appends an argument (copied).</summary>
    public KvCommandBuilder Add(ReadOnlySpan<byte> argument)
    {
        argument.CopyTo(Reserve(argument.Length));
        return this;
    }

    /// <summary>Appends an integer argument in decimal.</summary>
    public KvCommandBuilder Add(long value)
    {
        Span<byte> digits = stackalloc byte[20];
        Utf8Formatter.TryFormat(value, digits, out int n);
        return Add(digits[..n]);
    }

    /// <summary>Appends a stream ID argument (<c>ms-seq</c>).</summary>
    internal KvCommandBuilder Add(StreamId id)
    {
        Span<byte> text = stackalloc byte[41];
        Utf8Formatter.TryFormat(id.Ms, text, out int n);
        text[n++] = (byte)'-';
        Utf8Formatter.TryFormat(id.Seq, text[n..], out int m);
        return Add(text[..(n + m)]);
    }

    /// <summary>The command built since <see cref="Start"/> (at least one argument), as a view valid until the next
    /// <see cref="Start"/>.</summary>
    public KvCommand Build()
    {
        if (_count == 0) throw new InvalidOperationException("A command needs at least its name.");
        if (!_encoded)
        {
            if (_view is null) _view = new KvCommand(_data, _positions, 0, _count);
            else _view.Reset(_data, _positions, 0, _count);
            return _view;
        }

        // The header goes right before the first argument's "$len" line: the encoding is one contiguous range.
        Span<byte> header = stackalloc byte[HeaderRoom];
        header[0] = (byte)'*';
        Utf8Formatter.TryFormat(_count, header[1..], out int n);
        header[n + 1] = (byte)'\r';
        header[n + 2] = (byte)'\n';
        int rawStart = HeaderRoom - (n + 3);
        header[..(n + 3)].CopyTo(_data.AsSpan(rawStart));
        if (_view is null) _view = new KvCommand(_data, _positions, 0, _count, rawStart, _length - rawStart);
        else _view.Reset(_data, _positions, 0, _count, rawStart, _length - rawStart);
        return _view;
    }

    private Span<byte> Reserve(int length)
    {
        if (_encoded) return ReserveEncoded(length);
        if (_length + length > _data.Length) Array.Resize(ref _data, Math.Max(_length + length, _data.Length * 2));
        if (2 * _count + 2 > _positions.Length) Array.Resize(ref _positions, _positions.Length * 2);
        _positions[2 * _count] = _length;
        _positions[2 * _count + 1] = length;
        _count++;
        Span<byte> span = _data.AsSpan(_length, length);
        _length += length;
        return span;
    }

    // Appends "$length\r\n", room for the argument's bytes (returned, for the caller to fill) and "\r\n".
    private Span<byte> ReserveEncoded(int length)
    {
        int digits = 1;
        for (uint v = (uint)length; v >= 10; v /= 10) digits++;
        int needed = _length + digits + 5 + length;
        if (needed > _data.Length) Array.Resize(ref _data, Math.Max(needed, _data.Length * 2));
        if (2 * _count + 2 > _positions.Length) Array.Resize(ref _positions, _positions.Length * 2);
        Span<byte> data = _data;
        data[_length] = (byte)'$';
        int at = _length + 1 + digits;
        uint rest = (uint)length;
        do
        {
            data[--at] = (byte)('0' + rest % 10);
            rest /= 10;
        }
        while (rest != 0);
        int start = _length + 1 + digits + 2;
        data[start - 2] = (byte)'\r';
        data[start - 1] = (byte)'\n';
        data[start + length] = (byte)'\r';
        data[start + length + 1] = (byte)'\n';
        _positions[2 * _count] = start;
        _positions[2 * _count + 1] = length;
        _count++;
        _length = start + length + 2;
        return data.Slice(start, length);
    }
}
