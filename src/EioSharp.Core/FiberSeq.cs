namespace EioSharp;

/// <summary>Eio's <c>Fiber.fork_seq</c>.</summary>
public static partial class Fiber
{
    /// <summary>A sequence produced by a generator fiber: each request for the next item resumes the generator until it
    /// yields one.</summary>
    /// <typeparam name="T">The item type.</typeparam>
    /// <param name="sw">The switch the generator fiber belongs to (as a daemon: an unfinished sequence does not keep the switch
    /// open; the generator is cancelled when the switch's other fibers are done).</param>
    /// <param name="generator">Receives <c>yield</c>: awaiting <c>yield(x)</c> hands <c>x</c> to the consumer and suspends
    /// the generator until the next item is requested. Returning ends the sequence.</param>
    /// <returns>A single-use sequence. The generator fiber starts at the first <c>MoveNextAsync</c>. An exception thrown by
    /// the generator is thrown by the consumer's <c>MoveNextAsync</c>. Disposing the enumerator early stops the generator
    /// (its pending <c>yield</c> throws <see cref="OperationCanceledException"/>, which ends it quietly).</returns>
    /// <remarks>Eio: <c>Fiber.fork_seq ~sw fn</c>. Items are handed over through promises; the generator is forked by the
    /// first <c>MoveNextAsync</c>, which must therefore run on <paramref name="sw"/>'s domain.</remarks>
    public static async IAsyncEnumerable<T> ForkSeq<T>(Switch sw, Func<Func<T, Task>, Task> generator)
    {
        ArgumentNullException.ThrowIfNull(sw);
        ArgumentNullException.ThrowIfNull(generator);
        var (reply, replyResolver) = Promise.Create<(bool Has, T Item)>();
        Resolver<bool>? request = null;
        var stop = new OperationCanceledException("The sequence's consumer stopped.");
        var replies = new[] { replyResolver };

        async Task Yield(T item)
        {
            var (next, nextResolver) = Promise.Create<bool>();
            request = nextResolver;
            replies[0].Resolve((true, item));
            await next.AwaitAsync(); // throws stop when the consumer is disposed
        }

        ForkDaemon(sw, async () =>
        {
            try
            {
                await generator(Yield);
                replies[0].TryResolve((false, default!));
            }
            catch (OperationCanceledException ex) when (ReferenceEquals(ex, stop))
            {
            }
            catch (Exception ex)
            {
                replies[0].TryResolveError(ex);
                if (ex is CancelledException)
                {
                    throw;
                }
            }
        });

        try
        {
            while (true)
            {
                var (has, item) = await reply.AwaitAsync();
                if (!has)
                {
                    yield break;
                }

                (reply, replies[0]) = Promise.Create<(bool Has, T Item)>();
                yield return item;
                request!.Value.Resolve(true);
            }
        }
        finally
        {
            request?.TryResolveError(stop);
        }
    }
}
