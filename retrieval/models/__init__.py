"""The models: the protein tower (our compact CNN or a Hugging Face encoder), the text tower, the
fusion re-ranker and the retriever that bundles them as one folder, with what they share: the
residue alphabet, batching, precision, and how vectors become recall scores and features."""
