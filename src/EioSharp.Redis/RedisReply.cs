using System.Globalization;
using System.Text;

namespace EioSharp.Redis;

/// <summary>The RESP type of a reply.</summary>
/// <remarks>RESP2 has the first five; RESP3 (after <c>HELLO 3</c>) adds the rest.</remarks>
public enum RedisReplyKind
{
    /// <summary><c>+OK</c>: a simple string.</summary>
    SimpleString,

    /// <summary><c>-ERR ...</c> or <c>!len</c> (RESP3 blob error): an error reply.</summary>
    Error,

    /// <summary><c>:n</c>: a 64-bit integer.</summary>
    Integer,

    /// <summary><c>$len</c>: a bulk string (binary-safe).</summary>
    BulkString,

    /// <summary><c>*n</c>: an array.</summary>
    Array,

    /// <summary><c>$-1</c>, <c>*-1</c> or RESP3 <c>_</c>: the null reply.</summary>
    Null,

    /// <summary>RESP3 <c>,</c>: a double.</summary>
    Double,

    /// <summary>RESP3 <c>#t</c>/<c>#f</c>: a boolean.</summary>
    Boolean,

    /// <summary>RESP3 <c>(</c>: a big number (kept as text).</summary>
    BigNumber,

    /// <summary>RESP3 <c>=len</c>: a verbatim string (the <c>txt:</c> prefix removed).</summary>
    VerbatimString,

    /// <summary>RESP3 <c>%n</c>: a map; <see cref="RedisReply.Elements"/> holds keys and values alternately.</summary>
    Map,

    /// <summary>RESP3 <c>~n</c>: a set.</summary>
    Set,

    /// <summary>RESP3 <c>&gt;n</c>: an out-of-band push message (pub/sub, client tracking invalidations).</summary>
    Push,
}

/// <summary>One RESP reply: a value of one of the <see cref="RedisReplyKind"/> types, arrays holding nested replies.</summary>
/// <remarks>Immutable. RESP3 attributes (<c>|</c>) are read and dropped. Text is decoded as UTF-8 on demand.</remarks>
public sealed class RedisReply
{
    private static readonly RedisReply[] NoElements = [];

    private RedisReply(RedisReplyKind kind, byte[]? bytes, long integer, double number, RedisReply[]? elements)
    {
        Kind = kind;
        Bytes = bytes;
        Integer = integer;
        Double = number;
        Elements = elements ?? NoElements;
    }

    /// <summary>The null reply.</summary>
    public static RedisReply Null { get; } = new(RedisReplyKind.Null, null, 0, 0, null);

    /// <summary>The simple string <c>OK</c>.</summary>
    public static RedisReply Ok { get; } = new(RedisReplyKind.SimpleString, "OK"u8.ToArray(), 0, 0, null);

    /// <summary>The reply's RESP type.</summary>
    public RedisReplyKind Kind { get; }

    /// <summary>The payload of a string, error, big number or verbatim reply; null otherwise.</summary>
    public byte[]? Bytes { get; }

    /// <summary>The value of an integer reply (1/0 for a boolean).</summary>
    public long Integer { get; }

    /// <summary>The value of a double reply.</summary>
    public double Double { get; }

    /// <summary>The elements of an array, map (keys and values alternately), set or push; empty otherwise.</summary>
    public IReadOnlyList<RedisReply> Elements { get; }

    /// <summary>True for the null reply.</summary>
    public bool IsNull => Kind == RedisReplyKind.Null;

    /// <summary>True for an error reply.</summary>
    public bool IsError => Kind == RedisReplyKind.Error;

    /// <summary>True for arrays, maps, sets and pushes.</summary>
    public bool IsAggregate => Kind is RedisReplyKind.Array or RedisReplyKind.Map or RedisReplyKind.Set or RedisReplyKind.Push;

    /// <summary>The payload as UTF-8 text (strings, errors, big numbers), the number as invariant text, or null.</summary>
    public string? Text => Kind switch
    {
        RedisReplyKind.Integer => Integer.ToString(CultureInfo.InvariantCulture),
        RedisReplyKind.Double => Double.ToString("R", CultureInfo.InvariantCulture),
        RedisReplyKind.Boolean => Integer != 0 ? "true" : "false",
        _ => Bytes is null ? null : Encoding.UTF8.GetString(Bytes),
    };

    /// <summary>The element at <paramref name="index"/>.</summary>
    /// <param name="index">Zero-based.</param>
    public RedisReply this[int index] => Elements[index];

    internal static RedisReply Simple(byte[] bytes) => bytes is [(byte)'O', (byte)'K'] ? Ok : new(RedisReplyKind.SimpleString, bytes, 0, 0, null);

    internal static RedisReply ErrorReply(byte[] bytes) => new(RedisReplyKind.Error, bytes, 0, 0, null);

    internal static RedisReply Bulk(byte[] bytes) => new(RedisReplyKind.BulkString, bytes, 0, 0, null);

    internal static RedisReply Verbatim(byte[] bytes) => new(RedisReplyKind.VerbatimString, bytes, 0, 0, null);

    internal static RedisReply Big(byte[] bytes) => new(RedisReplyKind.BigNumber, bytes, 0, 0, null);

    internal static RedisReply Number(long value) => new(RedisReplyKind.Integer, null, value, 0, null);

    internal static RedisReply Boolean(bool value) => new(RedisReplyKind.Boolean, null, value ? 1 : 0, 0, null);

    internal static RedisReply DoubleReply(double value) => new(RedisReplyKind.Double, null, 0, value, null);

    internal static RedisReply Aggregate(RedisReplyKind kind, RedisReply[] elements) => new(kind, null, elements.Length, 0, elements);

    /// <summary>Throws <see cref="RedisErrorException"/> if this is an error reply; returns the reply otherwise.</summary>
    /// <returns>This reply.</returns>
    /// <exception cref="RedisErrorException">The reply is an error.</exception>
    public RedisReply ThrowIfError() => IsError ? throw new RedisErrorException(Text ?? "") : this;

    /// <summary>Reads the reply as a 64-bit integer (integer replies, or strings holding one).</summary>
    /// <returns>The number.</returns>
    /// <exception cref="RedisErrorException">The reply is an error.</exception>
    /// <exception cref="FormatException">The reply holds no integer.</exception>
    public long AsInt64()
    {
        ThrowIfError();
        return Kind is RedisReplyKind.Integer or RedisReplyKind.Boolean ? Integer
            : long.Parse(Text ?? throw new FormatException($"A {Kind} reply holds no integer."), NumberStyles.Integer, CultureInfo.InvariantCulture);
    }

    /// <summary>Reads a map reply (RESP3) or a flat key/value array (RESP2) as a dictionary of texts.</summary>
    /// <returns>The pairs; later duplicates win.</returns>
    /// <exception cref="RedisErrorException">The reply is an error.</exception>
    public Dictionary<string, RedisReply> AsMap()
    {
        ThrowIfError();
        var map = new Dictionary<string, RedisReply>(StringComparer.Ordinal);
        for (int i = 0; i + 1 < Elements.Count; i += 2)
        {
            map[Elements[i].Text ?? ""] = Elements[i + 1];
        }

        return map;
    }

    /// <summary>A RESP-like rendering for messages and tests: <c>"text"</c>, <c>(integer) 5</c>, <c>(nil)</c>, <c>(error) ERR ...</c>, arrays in brackets.</summary>
    /// <returns>The text.</returns>
    public override string ToString() => Kind switch
    {
        RedisReplyKind.Null => "(nil)",
        RedisReplyKind.Error => "(error) " + Text,
        RedisReplyKind.Integer => "(integer) " + Text,
        RedisReplyKind.Double => "(double) " + Text,
        RedisReplyKind.Boolean => "(boolean) " + Text,
        RedisReplyKind.SimpleString or RedisReplyKind.BulkString or RedisReplyKind.VerbatimString or RedisReplyKind.BigNumber => "\"" + Text + "\"",
        _ => Kind.ToString().ToLowerInvariant() + "[" + string.Join(", ", Elements) + "]",
    };
}

/// <summary>The server answered a command with an error reply.</summary>
public sealed class RedisErrorException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">The error text as the server sent it (for example <c>WRONGTYPE Operation against a key ...</c>).</param>
    public RedisErrorException(string message)
        : base(message)
    {
    }

    /// <summary>The error's first word (<c>ERR</c>, <c>WRONGTYPE</c>, <c>MOVED</c>, <c>NOGROUP</c>, ...).</summary>
    public string Prefix => Message.Split(' ', 2)[0];
}

/// <summary>The connection failed, closed, or was abandoned (a cancelled blocking command) while a command was pending.</summary>
/// <remarks>A command that fails this way may or may not have been executed by the server.</remarks>
public sealed class RedisConnectionException : IOException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What happened.</param>
    /// <param name="inner">The cause, if any.</param>
    public RedisConnectionException(string message, Exception? inner = null)
        : base(message, inner)
    {
    }
}
