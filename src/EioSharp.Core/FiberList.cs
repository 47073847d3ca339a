namespace EioSharp;

/// <summary>Eio's <c>Fiber.List.filter</c> / <c>filter_map</c>, beside <see cref="Fiber.MapAsync"/> and <see cref="Fiber.IterAsync"/>.</summary>
public static partial class Fiber
{
    /// <summary>Applies <paramref name="f"/> to every item concurrently (at most <paramref name="maxFibers"/> at once) and keeps
    /// the values it chose to keep, in the order of <paramref name="items"/>.</summary>
    /// <typeparam name="TIn">The item type.</typeparam>
    /// <typeparam name="TOut">The result type.</typeparam>
    /// <param name="items">The inputs.</param>
    /// <param name="f">Returns <c>(true, value)</c> to keep <c>value</c>, <c>(false, _)</c> to drop the item (Eio's <c>Some</c>/<c>None</c>).</param>
    /// <param name="maxFibers">The most items processed at once (at least 1; <see cref="int.MaxValue"/>: no limit).</param>
    /// <returns>The kept values in input order.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxFibers"/> is less than 1.</exception>
    /// <exception cref="Exception">The combined failure (S3); the first failure cancels the other items.</exception>
    /// <remarks>Eio: <c>Fiber.List.filter_map ?max_fibers</c>. Items are started in order, as <see cref="MapAsync"/>.</remarks>
    public static async Task<List<TOut>> FilterMapAsync<TIn, TOut>(IReadOnlyList<TIn> items, Func<TIn, Task<(bool Keep, TOut Value)>> f, int maxFibers = int.MaxValue)
    {
        ArgumentNullException.ThrowIfNull(f);
        var all = await MapAsync(items, f, maxFibers);
        var kept = new List<TOut>(all.Length);
        foreach (var (keep, value) in all)
        {
            if (keep)
            {
                kept.Add(value);
            }
        }

        return kept;
    }

    /// <summary>Runs <paramref name="predicate"/> on every item concurrently (at most <paramref name="maxFibers"/> at once) and
    /// returns the items it accepted, in input order.</summary>
    /// <typeparam name="T">The item type.</typeparam>
    /// <param name="items">The inputs.</param>
    /// <param name="predicate">True to keep the item.</param>
    /// <param name="maxFibers">The most items processed at once (at least 1).</param>
    /// <returns>The accepted items in input order.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxFibers"/> is less than 1.</exception>
    /// <exception cref="Exception">The combined failure (S3).</exception>
    /// <remarks>Eio: <c>Fiber.List.filter ?max_fibers</c>.</remarks>
    public static Task<List<T>> FilterAsync<T>(IReadOnlyList<T> items, Func<T, Task<bool>> predicate, int maxFibers = int.MaxValue)
    {
        ArgumentNullException.ThrowIfNull(predicate);
        return FilterMapAsync<T, T>(items, async x => (await predicate(x), x), maxFibers);
    }

    /// <summary>Forks a fiber on <paramref name="sw"/> that runs <paramref name="body"/> in its own new switch, so the child
    /// switch can fail or be cancelled without cancelling <paramref name="sw"/>.</summary>
    /// <param name="sw">The parent switch (it waits for the fiber).</param>
    /// <param name="onError">Receives the child switch's failure; not called when <paramref name="sw"/> itself is cancelled. If it
    /// throws, <paramref name="sw"/> fails with both the original error and that one.</param>
    /// <param name="body">Runs with the child switch.</param>
    /// <exception cref="InvalidOperationException"><paramref name="sw"/> belongs to another domain.</exception>
    /// <remarks>Eio: <c>Fiber.fork_sub</c>. As <see cref="Fork(Switch, Func{Task})"/>: nothing runs if <paramref name="sw"/> is
    /// cancelled or finished.</remarks>
    public static void ForkSub(Switch sw, Action<Exception> onError, Func<Switch, Task> body)
    {
        ArgumentNullException.ThrowIfNull(sw);
        ArgumentNullException.ThrowIfNull(onError);
        ArgumentNullException.ThrowIfNull(body);
        Fork(sw, async () =>
        {
            try
            {
                await Switch.RunAsync(body);
            }
            catch (Exception ex) when (!sw.CancelContext.IsCancelled)
            {
                try
                {
                    onError(ex);
                }
                catch (Exception ex2)
                {
                    sw.Fail(ex);
                    sw.Fail(ex2);
                }
            }
        });
    }
}
