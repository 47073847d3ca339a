using System.IO.Hashing;

namespace EioSharp.Kv;

/// <summary>Compares byte arrays by content; also looks them up by span without allocating.</summary>
/// <remarks>Hashes with XXH3 (<see cref="XxHash3"/>, 64 bits, the low 32 kept) under a seed drawn once per process from
/// the runtime's random source, so crafted keys cannot be chosen to collide in advance, and every table keyed by
/// bytes (the keyspace, hashes, sets, sorted sets, pub/sub, tracking, WATCH) hashes a key alike (§219: for a 16-byte key
/// ~35 instructions where <see cref="HashCode.AddBytes"/>, xxHash32 four bytes at a time, took ~150). Like
/// <see cref="HashCode"/> it is not a keyed pseudo-random function (Redis uses SipHash-1-2 for that): a client that could
/// read hash values back could learn about the seed; none is ever returned.
/// <b>Thread safety</b>: stateless after the seed; any thread.</remarks>
public sealed class ByteArrayComparer : IEqualityComparer<byte[]>, IAlternateEqualityComparer<ReadOnlySpan<byte>, byte[]>
{
    private static readonly long s_seed = NewSeed();

    /// <summary>The shared instance.</summary>
    public static ByteArrayComparer Instance { get; } = new();

    private ByteArrayComparer() { }

    /// <inheritdoc/>
    public bool Equals(byte[]? x, byte[]? y) => ReferenceEquals(x, y) || (x is not null && y is not null && x.AsSpan().SequenceEqual(y));

    /// <inheritdoc/>
    public int GetHashCode(byte[] obj) => GetHashCode(obj.AsSpan());

    /// <inheritdoc/>
    public bool Equals(ReadOnlySpan<byte> alternate, byte[] other) => alternate.SequenceEqual(other);

    /// <inheritdoc/>
    public int GetHashCode(ReadOnlySpan<byte> alternate) => (int)XxHash3.HashToUInt64(alternate, s_seed);

    /// <inheritdoc/>
    public byte[] Create(ReadOnlySpan<byte> alternate) => alternate.ToArray();

    // From the runtime's own random source (the one that seeds HashCode and Random.Shared: System.Native's getrandom or
    // /dev/urandom), not RandomNumberGenerator: that one loads OpenSSL into the process, several MB of RSS an empty
    // NativeAOT server did not have (MemoryFootprintTests: 18-19 MB empty against ~12).
    private static long NewSeed() => Random.Shared.NextInt64(long.MinValue, long.MaxValue);
}
