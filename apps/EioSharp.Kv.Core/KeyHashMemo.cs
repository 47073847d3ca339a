namespace EioSharp.Kv;

/// <summary>The last key hashed and its hash (<see cref="ByteArrayComparer"/>'s, seeded per process): a command looks up
/// the same key several times in a row (find, account, delete when emptied, serve a blocked client; the next command
/// often the same key again), and each lookup hashed its bytes afresh (a third of the BLPOP/LPUSH ping-pong's
/// lookups' cost went to <see cref="HashCode"/>, callgrind, issue 12).</summary>
/// <remarks>A hit compares the key with the remembered bytes (a length check and a short <c>SequenceEqual</c>), so the
/// result is always the key's own hash; a key longer than <see cref="MaxKey"/> bytes is hashed and not remembered.
/// Thread safety: as the table that owns it (the store owner's thread, or the one thread loading the store).</remarks>
internal sealed class KeyHashMemo
{
    /// <summary>The longest key remembered, in bytes.</summary>
    public const int MaxKey = 64;

    private readonly byte[] _key = new byte[MaxKey];
    private int _length = -1; // nothing remembered
    private int _hash;

    /// <summary><see cref="ByteArrayComparer.GetHashCode(ReadOnlySpan{byte})"/> of <paramref name="key"/>.</summary>
    public int Hash(ReadOnlySpan<byte> key)
    {
        if (key.Length == _length && key.SequenceEqual(_key.AsSpan(0, key.Length)))
        {
            return _hash;
        }

        int hash = ByteArrayComparer.Instance.GetHashCode(key);
        if (key.Length <= MaxKey)
        {
            key.CopyTo(_key);
            _length = key.Length;
            _hash = hash;
        }

        return hash;
    }
}
