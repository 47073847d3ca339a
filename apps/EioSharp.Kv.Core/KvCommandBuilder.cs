using System.Buffers.Text;

namespace EioSharp.Kv;

/// <summary>Builds a command the store runs or logs itself (a nested LPOP of BLPOP, an XCLAIM effect of XREADGROUP)
/// into one reused buffer, handed out as a view (<see cref="KvCommand.IsView"/>): no array per argument and no command
/// object per call.</summary>
/// <remarks>The command returned by <see cref="Build"/> is valid until the next <see cref="Start"/>; whoever keeps it
/// longer keeps <see cref="KvCommand.ToOwned"/> (the AOF sinks encode or copy it at once). A builder serves one command
/// at a time: code that may run while a built command is still in use takes a builder of its own.
/// Thread safety: none (the store owner).</remarks>
internal sealed class KvCommandBuilder
{
    private const int KeepBytes = 64 * 1024; // a larger buffer (a big argument) is dropped at the next Start

    private byte[] _data = new byte[256];
    private int[] _positions = new int[32]; // (start, length) pairs
    private int _length;
    private int _count;
    private KvCommand? _view;

    /// <summary>Forgets the previous command and starts a new one.</summary>
    public KvCommandBuilder Start()
    {
        if (_data.Length > KeepBytes) _data = new byte[256];
        _length = 0;
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
        if (_view is null) _view = new KvCommand(_data, _positions, 0, _count);
        else _view.Reset(_data, _positions, 0, _count);
        return _view;
    }

    private Span<byte> Reserve(int length)
    {
        if (_length + length > _data.Length) Array.Resize(ref _data, Math.Max(_length + length, _data.Length * 2));
        if (2 * _count + 2 > _positions.Length) Array.Resize(ref _positions, _positions.Length * 2);
        _positions[2 * _count] = _length;
        _positions[2 * _count + 1] = length;
        _count++;
        Span<byte> span = _data.AsSpan(_length, length);
        _length += length;
        return span;
    }
}
