"""Bundled model declarations, installed as ``lexmargin.models.<name>``; load with
``lexmargin.load_model(name, input_dim=D, **options)``.

* ``linear``: f = y w.x (degree 1)
* ``svm_bias``: f = y (w.x + b^2) or y (w.x + b1^2 - b2^2); blocks w (1), b (2), sum form
* ``deep_linear``: f = y w_L^T W_{L-1} ... W_1 x; one degree-1 block per layer (joint degree L)
* ``two_layer``: f = y a.sigma(V x), sigma in square / squared_relu / relu / leaky_relu
* ``mlp``: f = y a.sigma(W_k ... sigma(W_1 x + b_1)), relu / leaky_relu, optional first-layer bias;
  one degree-1 block per layer (joint degree = number of layers)
* ``ensemble``: f = y sum_k g_k(x), depth-k sub-models of degree k, sum form
* ``log_predictor``: f = log(w.(y x)) and the (1+eps)-log predictor (not homogeneous)
* ``multiclass_linear``: g = W x in R^K, f_{n,j} = (W_{y_n} - W_j) x_n (K classes, labels 0..K-1; degree 1)
"""
