namespace EioSharp.Kv;

/// <summary>Thrown by <see cref="RespParser"/> when the input is not valid RESP; the message is Redis's wording.</summary>
/// <remarks>The server replies <c>-ERR {Message}</c> and closes that connection.</remarks>
public sealed class RespProtocolException : Exception
{
    /// <summary>Creates the exception with a message such as <c>Protocol error: invalid bulk length</c>.</summary>
    public RespProtocolException(string message) : base(message) { }

    /// <summary>Creates the exception with a message and an inner exception.</summary>
    public RespProtocolException(string message, Exception innerException) : base(message, innerException) { }

    /// <summary>Creates the exception with a default message.</summary>
    public RespProtocolException() : base("Protocol error") { }
}

/// <summary>Thrown by <see cref="AofLoader"/> when the append-only file is corrupt before its last command.</summary>
public sealed class AofCorruptException : Exception
{
    /// <summary>Creates the exception for corruption found at <paramref name="offset"/> (bytes from the start of the file).</summary>
    public AofCorruptException(long offset, string reason, Exception? innerException = null)
        : base($"Bad file format reading the append only file at offset {offset}: {reason}", innerException)
    {
        Offset = offset;
    }

    /// <summary>Creates the exception with a message.</summary>
    public AofCorruptException(string message) : base(message) { }

    /// <summary>Creates the exception with a message and an inner exception.</summary>
    public AofCorruptException(string message, Exception innerException) : base(message, innerException) { }

    /// <summary>Creates the exception with a default message.</summary>
    public AofCorruptException() : base("Bad file format reading the append only file") { }

    /// <summary>Byte offset of the start of the first command that could not be read.</summary>
    public long Offset { get; }
}
