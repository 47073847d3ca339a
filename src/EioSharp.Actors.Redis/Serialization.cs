using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;

namespace EioSharp.Actors.Redis;

/// <summary>Turns message and reply payloads into bytes and back; pluggable (the default is System.Text.Json with source generation).</summary>
/// <remarks>Envelopes carry the payload's type name (<see cref="TypeName"/>) and a version chosen by the sender, so a handler can
/// read old and new shapes side by side during a rolling upgrade.</remarks>
public interface IActorSerializer
{
    /// <summary>Serializes a value.</summary>
    /// <typeparam name="T">The declared type.</typeparam>
    /// <param name="value">The value.</param>
    /// <returns>The bytes.</returns>
    /// <exception cref="NotSupportedException">The serializer has no contract for <typeparamref name="T"/>.</exception>
    byte[] Serialize<T>(T value);

    /// <summary>Deserializes a value.</summary>
    /// <typeparam name="T">The expected type.</typeparam>
    /// <param name="data">The bytes.</param>
    /// <returns>The value.</returns>
    /// <exception cref="NotSupportedException">The serializer has no contract for <typeparamref name="T"/>.</exception>
    /// <exception cref="JsonException">The bytes do not hold a <typeparamref name="T"/> (or another serializer's format error).</exception>
    T Deserialize<T>(ReadOnlySpan<byte> data);

    /// <summary>The stable name written into envelopes for <paramref name="type"/>.</summary>
    /// <param name="type">The payload type.</param>
    /// <returns>The name (default: the type's full name).</returns>
    string TypeName(Type type) => type.FullName ?? type.Name;
}

/// <summary>System.Text.Json with a source-generated <see cref="JsonSerializerContext"/>: no reflection, trimming- and AOT-safe.</summary>
/// <param name="context">The generated context listing every message and reply type (<c>[JsonSerializable(typeof(MyMessage))]</c>).</param>
public sealed class JsonActorSerializer(JsonSerializerContext context) : IActorSerializer
{
    /// <inheritdoc/>
    public byte[] Serialize<T>(T value) => JsonSerializer.SerializeToUtf8Bytes(value, Info<T>());

    /// <inheritdoc/>
    public T Deserialize<T>(ReadOnlySpan<byte> data) => JsonSerializer.Deserialize(data, Info<T>())!;

    private JsonTypeInfo<T> Info<T>() => context.GetTypeInfo(typeof(T)) as JsonTypeInfo<T>
        ?? throw new NotSupportedException($"The JSON context {context.GetType().Name} has no contract for {typeof(T)}; add [JsonSerializable(typeof({typeof(T).Name}))].");
}
