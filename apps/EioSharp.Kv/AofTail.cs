using EioSharp.Fs;

namespace EioSharp.Kv;

/// <summary>How the incremental AOF file is appended to: through the page cache (the library's
/// <see cref="MappedTailAppender"/>: stores into a mapped, reserved tail for short records, <c>pwrite</c>s for long ones),
/// or, behind <c>EIOSHARP_KV_AOF_DIRECT=1</c> under <c>everysec</c>/<c>no</c>, past it (the library's
/// <see cref="UncachedWriter"/>: every append one <c>O_DIRECT</c> write from an aligned buffer, the last partial block
/// zero-padded and written again by the next append; issue 14, session 35, h200).</summary>
/// <remarks>Either way an append returns once its bytes are in the file (the page cache, or the device), so the contract
/// of rationale §130 holds unchanged: a reply leaves after its round's bytes are written. A crash leaves zeros past the
/// last record (the mapped tail's reservation, or a direct append's padding), which the loader cuts
/// (<see cref="AppendOnlyFile.ZeroTailStart"/>). The direct appender needs a start at a multiple of
/// <see cref="UncachedWriter.Alignment"/> (a new incremental file; a file reopened at an unaligned length, or cut back to
/// one after a failed write, is appended to through the page cache, for good).</remarks>
internal sealed class AofTail
{
    private MappedTailAppender? _mapped;
    private UncachedWriter? _direct;
    private readonly FileWriter _file;
    private long _length;

    private AofTail(FileWriter file, long length)
    {
        _file = file;
        _length = length;
    }

    /// <summary>Opens the appender at <paramref name="length"/>: direct when asked and the start is aligned (and the
    /// library can: <see cref="UncachedWriter.IsDirect"/>), else the mapped tail with <paramref name="chunk"/>.</summary>
    public static AofTail Open(FileWriter file, long length, bool direct, int chunk, int maxStore, bool reserveWrites)
    {
        var tail = new AofTail(file, length);
        if (direct && length % UncachedWriter.Alignment == 0)
        {
            var writer = file.OpenUncached(length, DirectBufferBytes);
            if (writer.IsDirect)
            {
                tail._direct = writer;
                return tail;
            }

            writer.Dispose();
        }

        tail.OpenMapped(chunk, maxStore, reserveWrites);
        return tail;
    }

    /// <summary>The direct appender's buffer: a round's bytes up to this size are one write (larger ones several).</summary>
    internal const int DirectBufferBytes = 4 << 20;

    private void OpenMapped(int chunk, int maxStore, bool reserveWrites)
    {
        _mapped = _file.OpenMappedTail(_length, chunk);
        _mapped.MaxStoreBytes = maxStore;
        _mapped.ReserveForWrites = reserveWrites;
    }

    /// <summary>Whether appends go past the page cache.</summary>
    public bool IsDirect => _direct is not null;

    /// <summary>The file's logical length: where the next append goes.</summary>
    public long Length => _length;

    /// <summary>Appends <paramref name="data"/>; with <paramref name="more"/> the direct appender only buffers it, to be
    /// written with the next append (a <c>#TS</c> line before its round).</summary>
    /// <exception cref="IOException">The write failed (see <see cref="MappedTailAppender.Append"/>,
    /// <see cref="UncachedWriter.Flush"/>); <see cref="Length"/> is unchanged and the caller cuts the file back
    /// (<see cref="Truncate"/>).</exception>
    public void Append(ReadOnlySpan<byte> data, bool more = false)
    {
        if (_direct is { } direct)
        {
            direct.Write(data);
            if (!more)
            {
                direct.Flush();
                _length = direct.Position;
            }

            return;
        }

        _mapped!.Append(data);
        _length = _mapped.Length;
    }

    /// <summary>Cuts the file back to <paramref name="length"/> (a failed write's bytes, a probe). The direct appender
    /// is closed and reopened there if aligned; otherwise appends go through the page cache from now on.</summary>
    public void Truncate(long length)
    {
        if (_direct is { } direct)
        {
            _direct = null;
            direct.Dispose(); // (clears O_DIRECT; what it still buffered is dropped)
            _file.SetLength(length);
            _length = length;
            if (length % UncachedWriter.Alignment == 0)
            {
                var writer = _file.OpenUncached(length, DirectBufferBytes);
                if (writer.IsDirect)
                {
                    _direct = writer;
                    return;
                }

                writer.Dispose();
            }

            OpenMapped(0, 0, reserveWrites: false); // pwrites at the end, for good
            return;
        }

        _mapped!.Truncate(length);
        _length = length;
    }

    /// <summary>Writes what is left and cuts the file to <see cref="Length"/> (the mapped tail's reservation, the direct
    /// appender's padding); does not sync.</summary>
    /// <exception cref="IOException">The last write or the truncation failed.</exception>
    public void Close()
    {
        if (_direct is { } direct)
        {
            _direct = null;
            try
            {
                direct.Complete();
            }
            finally
            {
                direct.Dispose();
            }

            return;
        }

        _mapped!.Close();
    }
}
