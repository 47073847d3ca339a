using System.Buffers;

namespace EioSharp.Kv;

/// <summary>Receives the write commands the store executed, already rewritten for the AOF.</summary>
/// <remarks>
/// <see cref="KvStore.Execute(KvSession, KvCommand, long, RespWriter, IAofSink)"/> calls <see cref="Append"/> once for each command that changed data,
/// after applying it, with relative expiries made absolute (see <see cref="KvStore"/>). Failed and
/// no-op commands are not appended. The command passed may be the caller's own command object.
/// </remarks>
public interface IAofSink
{
    /// <summary>Appends one command to the log.</summary>
    void Append(KvCommand command);
}

/// <summary>An <see cref="IAofSink"/> that encodes commands in AOF format into a buffer writer.</summary>
/// <remarks>The server typically appends into an <see cref="ArrayBufferWriter{T}"/> during a group
/// commit, then writes and fsyncs the buffer once.</remarks>
public sealed class AofBufferSink : IAofSink
{
    /// <summary>Creates a sink that writes into <paramref name="output"/>.</summary>
    public AofBufferSink(IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        Output = output;
    }

    /// <summary>The buffer commands are encoded into.</summary>
    public IBufferWriter<byte> Output { get; }

    /// <summary>Commands appended so far.</summary>
    public long CommandCount { get; private set; }

    /// <inheritdoc/>
    public void Append(KvCommand command)
    {
        AofWriter.WriteCommand(Output, command);
        CommandCount++;
    }

    /// <summary>Appends one command already encoded in AOF form (a script's captured effect).</summary>
    internal void AppendEncoded(ReadOnlySpan<byte> encoded)
    {
        Output.Write(encoded);
        CommandCount++;
    }
}

/// <summary>An <see cref="IAofSink"/> that keeps the commands in a list; handy in tests.</summary>
public sealed class AofListSink : IAofSink
{
    /// <summary>The commands appended, in order.</summary>
    public List<KvCommand> Commands { get; } = [];

    /// <inheritdoc/>
    public void Append(KvCommand command) => Commands.Add(command.ToOwned());
}
