using EioSharp.Fs;

namespace EioSharp.Kv;

/// <summary>A read-only, forward-only <see cref="Stream"/> over a library file from <paramref name="start"/> (default 0),
/// read with blocking <see cref="EioFile.ReadAt"/> calls: what the AOF and RDB loaders read from (they run on a system thread).
/// Reads end at <paramref name="end"/> (default: the file's end).</summary>
internal sealed class EioFileReadStream(EioFile file, long start = 0, long end = long.MaxValue) : Stream
{
    private long _position = start;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => _position; set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        if (_position >= end)
        {
            return 0;
        }

        if (end - _position < buffer.Length)
        {
            buffer = buffer[..(int)(end - _position)];
        }

        int n = file.ReadAt(_position, buffer);
        _position += n;
        return n;
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
