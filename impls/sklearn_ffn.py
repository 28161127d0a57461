"""scikit-learn backend: the network as an MLPRegressor / MLPClassifier, trained by
scikit-learn's own backpropagation and SGD (partial_fit), from the harness's weights and in
the harness's sample order.

The mapping (scikit-learn 1.9, sklearn/neural_network/_multilayer_perceptron.py):
  weights    coefs_[l] = W(l)^T (fan_in, fan_out), intercepts_[l] = b(l), float64;
  output     mse: MLPRegressor (identity output, squared error); bce: MLPClassifier, one
             logistic output per column (classes [0, 1] for one column, a multi-label
             indicator for several); ce: MLPClassifier on the labels argmax(Y) with classes
             0 .. k-1 (softmax over k >= 3 outputs, in the columns' order);
  hidden     sigmoid -> 'logistic', tanh, relu (relu'(0) = 0, as here);
  update     scikit-learn's output error is yhat - y, ours DELTA_SCALE[loss] (yhat - y) = c (yhat - y),
             and its weight gradient over a batch of n is (a^T delta + alpha W) / n; so
             SGDOptimizer (momentum 0, no Nesterov, constant rate) with
             learning_rate_init = c lr and alpha = l2 n / c is W <- W - lr (dJ/dW), with
             J = mean of L + (l2 / 2) sum W^2. alpha depends on the batch size n: an epoch is
             one partial_fit over its full batches and, where the last batch is shorter,
             a second over that one with its own alpha;
  order      partial_fit(X[order], ..., shuffle=False): gen_batches keeps the order;
  dtype      float32 (hp.dtype) as scikit-learn keeps it: float32 weights and float32 input,
             so its forward pass, backpropagation and update run in float32.
What it cannot express is refused (DECLARATION.refuses, checked by TrainConfig).
gradients() calls BaseMultilayerPerceptron._backprop, which is private (pinned by
requirements.txt; checked against torch by impls/checks.py).
"""
import numpy as np
from sklearn.neural_network import MLPClassifier, MLPRegressor

from . import DELTA_SCALE, Declaration, refusal

DECLARATION = Declaration(
    name="sklearn", devices=("cpu",), extra="baselines", packages=("sklearn",),
    gradients="hand-written", sources=("sklearn_ffn.py",), tools=(),
    refuses=(
        ("adam", "scikit-learn's Adam adds eps to sqrt(v) before the bias correction, "
                 "torch to sqrt(v-hat) after it: another update"),
        ("input_activation", "MLPRegressor/MLPClassifier feed the inputs to the first layer as they are"),
        ("grad_bug", "scikit-learn backpropagates the true weight gradient"),
        ("relu_grad0", "scikit-learn's relu'(0) is 0"),
        ("softmax2", "MLPClassifier gives two classes one logistic output, not a softmax over two"),
    ),
)
ACTIVATION = {"sigmoid": "logistic", "tanh": "tanh", "relu": "relu"}
DIVERGED = "Solver produced non-finite parameter weights"  # partial_fit's error, after the epoch


def _targets(state, Y):
    """Y as the estimator's fit wants it: regression targets, or class labels."""
    loss, k = state["hp"].loss, Y.shape[1]
    if loss == "ce":
        labels = Y.argmax(axis=1)
        if not np.array_equal(Y, state["eye"][labels]):
            raise ValueError("backend 'sklearn': ce targets must be one-hot rows")
        return labels
    return Y[:, 0] if k == 1 else Y  # bce: 0/1 labels, which scikit-learn checks


def _estimator(sizes, hp):
    kind = MLPRegressor if hp.loss == "mse" else MLPClassifier
    return kind(hidden_layer_sizes=sizes[1:-1], activation=ACTIVATION[hp.activation],
                solver="sgd", alpha=0.0, batch_size=1, learning_rate="constant",
                learning_rate_init=DELTA_SCALE[hp.loss] * hp.lr, momentum=0.0,
                nesterovs_momentum=False, shuffle=False, early_stopping=False, tol=0.0,
                n_iter_no_change=np.inf, max_iter=1, random_state=0)


def from_numpy(params, hp, device="cpu"):
    sizes = [params[0][0].shape[1]] + [len(b) for _, b in params]
    k = sizes[-1]
    reason = refusal("sklearn", hp, k)
    if reason:
        raise ValueError(reason)
    if hp.loss == "ce" and k < 2:
        raise ValueError(f"backend 'sklearn': ce needs at least 3 outputs, got {k}")
    est = _estimator(sizes, hp)
    dtype = np.dtype(hp.dtype)
    state = {"hp": hp, "est": est, "c": DELTA_SCALE[hp.loss], "eye": np.eye(k), "dtype": dtype}
    # scikit-learn sets up its fitted state (layers, output activation, label binarizer) in
    # the first partial_fit: one step on one zero sample, whose weights are then replaced by
    # ours. The optimiser it made goes too, so the next partial_fit makes a fresh one from
    # learning_rate_init (no velocities); the counters go back to a fresh estimator's.
    y0 = _targets(state, np.zeros((1, k)) if hp.loss != "ce" else state["eye"][:1])
    extra = {"classes": np.arange(max(k, 2))} if hp.loss != "mse" else {}
    est.partial_fit(np.zeros((1, sizes[0]), dtype), y0, **extra)
    est.coefs_ = [np.array(W, dtype=dtype).T.copy() for W, _ in params]
    est.intercepts_ = [np.array(b, dtype=dtype) for _, b in params]
    del est._optimizer
    est.t_, est.n_iter_, est.loss_curve_, est.best_loss_ = 0, 0, [], np.inf
    return state


def to_numpy(state):
    est = state["est"]
    return [(W.T.astype(np.float64), b.astype(np.float64))
            for W, b in zip(est.coefs_, est.intercepts_)]


def _partial_fit(state, X, y, n_batch):
    """One pass of scikit-learn's SGD over X, y in batches of n_batch."""
    est = state["est"]
    est.batch_size = n_batch
    est.alpha = state["hp"].l2 * n_batch / state["c"]  # its L2 term is alpha W / n_batch
    try:
        est.partial_fit(X, y)
    except ValueError as e:  # a diverging run: the weights are NaN/inf, as in any backend
        if DIVERGED not in str(e):
            raise


def train_epoch(state, X, Y, order):
    n = len(order)
    B = min(state["hp"].batch(n), n)
    X, y = np.asarray(X[order], state["dtype"]), _targets(state, Y[order])
    full = n - n % B
    if full:
        _partial_fit(state, X[:full], y[:full], B)
    if full < n:  # the short last batch, with its own alpha
        _partial_fit(state, X[full:], y[full:], n - full)


def predict(state, X):
    est, hp = state["est"], state["hp"]
    X = np.asarray(X, state["dtype"])
    if hp.loss == "mse":
        return est.predict(X).reshape(len(X), -1).astype(np.float64, copy=False)
    P = est.predict_proba(X).astype(np.float64, copy=False)
    return P[:, 1:] if est.n_outputs_ == 1 else P  # one logistic output: [1 - p, p]


def gradients(state, X, Y):
    """dJ/dtheta by scikit-learn's _backprop: its gradient of the batch, times c, with
    alpha = l2 m / c (its gradient is (a^T delta + alpha W) / m, delta = yhat - y)."""
    est, c = state["est"], state["c"]
    m = len(X)
    est.alpha = state["hp"].l2 * m / c
    L = len(est.coefs_)
    dtype = state["dtype"]
    activations, deltas = [np.asarray(X, dtype=dtype)] + [None] * L, [None] * L
    coef_grads = [np.empty_like(W) for W in est.coefs_]
    intercept_grads = [np.empty_like(b) for b in est.intercepts_]
    _, coef_grads, intercept_grads = est._backprop(activations[0], np.asarray(Y, dtype=dtype),
                                                   None, activations, deltas, coef_grads,
                                                   intercept_grads)
    return [((c * gW.T).astype(np.float64, copy=False), (c * gb).astype(np.float64, copy=False))
            for gW, gb in zip(coef_grads, intercept_grads)]


def synchronize(state):
    """Nothing to wait for: the work is done when train_epoch returns."""
