namespace EioSharp.Kv;

/// <summary>Size limits the RESP parser enforces before it allocates anything for a command.</summary>
/// <remarks>
/// Every limit is checked when the header that announces a size is parsed, so a client cannot make
/// the server allocate memory by announcing a huge bulk string or argument count.
/// </remarks>
public sealed record RespLimits
{
    /// <summary>Largest bulk string accepted: 512 MiB, Redis's default <c>proto-max-bulk-len</c>.</summary>
    public const long DefaultMaxBulkLength = 512L * 1024 * 1024;

    /// <summary>Longest inline command line (and longest unterminated header line): 64 KiB, Redis's <c>PROTO_INLINE_MAX_SIZE</c>.</summary>
    public const int DefaultMaxInlineLength = 64 * 1024;

    /// <summary>Most arguments in one multibulk command: 1024*1024, Redis's limit for unauthenticated clients is far lower, but a larger one only costs the offsets array.</summary>
    public const int DefaultMaxMultibulkCount = 1024 * 1024;

    /// <summary>The defaults above.</summary>
    public static RespLimits Default { get; } = new();

    /// <summary>Largest bulk string in bytes; also the largest string value APPEND and SETRANGE may create.</summary>
    public long MaxBulkLength { get; init; } = DefaultMaxBulkLength;

    /// <summary>Longest inline command line in bytes, excluding the line terminator.</summary>
    public int MaxInlineLength { get; init; } = DefaultMaxInlineLength;

    /// <summary>Most arguments (including the command name) in one multibulk command.</summary>
    public int MaxMultibulkCount { get; init; } = DefaultMaxMultibulkCount;
}
