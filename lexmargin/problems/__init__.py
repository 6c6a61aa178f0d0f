"""Problems: each builds an NLP from (model, data, norm, options), solves it with IPOPT and certifies it."""
